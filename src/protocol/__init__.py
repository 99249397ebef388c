"""The SRCNN_v1 benchmark protocol, framework-free (numpy only, never MindSpore): MATLAB imresize and colour
conversion, degradation, PSNR/SSIM, image files, naming, the one scoring loop, the report and comparison images."""
