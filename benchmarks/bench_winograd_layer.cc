// The 5x5 hidden layer alone, direct against Winograd, on one thread (CPU time): where the crossover lies.
// Includes the kernel source, so it measures exactly the kernel's code paths. Build and run (from the repo):
//   g++ -O3 -std=c++17 -pthread -march=native -o /tmp/bench_winograd_layer benchmarks/bench_winograd_layer.cc
//   /tmp/bench_winograd_layer OUT_H OUT_W REPEATS [C_IN C_OUT]     (defaults 64 32: the 9-5-5 layer)
// (-march=x86-64-v3 / x86-64 for the AVX2 / SSE2 code.) Prints the times, GFLOP/s of the direct algorithm's
// FLOPs ("effective" for Winograd), Winograd's phases (input transform, products, output transform) and the
// largest difference relative to the largest output.
#include "../src/model/cpu/srcnn_fused.cc"

#include <cmath>
#include <cstdio>
#include <ctime>

static double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s OUT_H OUT_W REPEATS [C_IN C_OUT]\n", argv[0]);
    return 2;
  }
  const int h = std::atoi(argv[1]), w = std::atoi(argv[2]), repeats = std::atoi(argv[3]);
  const int c_in = argc > 4 ? std::atoi(argv[4]) : 64, c_out = argc > 5 ? std::atoi(argv[5]) : 32;
  std::vector<float> weights(static_cast<size_t>(c_out) * c_in * 25), bias(c_out);
  for (auto &v : weights) v = std::rand() / static_cast<float>(RAND_MAX) - 0.5f;
  const Layer layer = pack(weights.data(), bias.data(), c_out, c_in, 5, true, true);
  const WinoLayer wino = wino_pack(layer);
  const size_t in_size = static_cast<size_t>(h + 4) * (w + 4) * layer.c_in, out_size = static_cast<size_t>(h) * w * layer.c_out;
  Buffer in(in_size), direct(out_size), winograd(out_size);
  for (size_t i = 0; i < in_size; i++) in.data[i] = std::rand() / static_cast<float>(RAND_MAX);
  WinoScratch scratch(layer.c_in, layer.c_out);
  double start = cpu_seconds();
  for (int r = 0; r < repeats; r++) conv_plane(in.data, w + 4, layer, h, w, direct.data, true);
  const double t_direct = (cpu_seconds() - start) / repeats;
  start = cpu_seconds();
  for (int r = 0; r < repeats; r++) wino_conv_plane(in.data, w + 4, wino, h, w, winograd.data, true, scratch);
  const double t_wino = (cpu_seconds() - start) / repeats;
  // the phases, chunk by chunk as wino_conv runs them
  const int tiles_x = (w + 3) / 4, tiles = tiles_x * ((h + 3) / 4);
  auto in_row = [&](int y) -> const float * {  // rows past the plane are zeros, as in the kernel
    return y < h + 4 ? in.data + static_cast<size_t>(y) * (w + 4) * layer.c_in : nullptr;
  };
  auto out_row = [&](int y) { return winograd.data + static_cast<size_t>(y) * w * layer.c_out; };
  double phase[3] = {0, 0, 0};
  for (int r = 0; r < repeats; r++)
    for (int first = 0; first < tiles; first += kWinoChunk) {
      const WinoTiles chunk{first, std::min(kWinoChunk, tiles - first), tiles_x};
      double t0 = cpu_seconds();
      wino_input_transform(in_row, w + 4, layer.c_in, chunk, scratch.v.data);
      double t1 = cpu_seconds();
      wino_products(wino, chunk.count, scratch.v.data, scratch.m.data);
      double t2 = cpu_seconds();
      wino_output_transform(wino, chunk, scratch.m.data, h, w, out_row, true);
      double t3 = cpu_seconds();
      phase[0] += t1 - t0, phase[1] += t2 - t1, phase[2] += t3 - t2;
    }
  double diff = 0, largest = 0;
  for (size_t i = 0; i < out_size; i++) {
    diff = std::max(diff, static_cast<double>(std::fabs(direct.data[i] - winograd.data[i])));
    largest = std::max(largest, static_cast<double>(std::fabs(direct.data[i])));
  }
  const double flops = 2.0 * h * w * c_in * c_out * 25;
  std::printf("%dx%d %d->%d  direct %.4f ms (%.0f GFLOP/s)  winograd %.4f ms (effective %.0f)  ratio %.2f  "
              "[input %.4f products %.4f output %.4f ms]  difference %.1e\n",
              h, w, c_in, c_out, t_direct * 1e3, flops / t_direct * 1e-9, t_wino * 1e3, flops / t_wino * 1e-9,
              t_wino / t_direct, phase[0] / repeats * 1e3, phase[1] / repeats * 1e3, phase[2] / repeats * 1e3,
              diff / std::max(largest, 1e-30));
  return 0;
}
