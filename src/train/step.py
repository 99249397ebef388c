"""The trained network, its optimizer, and one training step (MSE + Adam, data-parallel when distributed)."""
from src.train.schedules import learning_rates


def border(arch):
    """src.model.srcnn.border, imported when needed: the trainer loads without MindSpore, so that train.py
    checks its paths and locks output_path before the framework's seconds of start-up."""
    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    from src.model.srcnn import border as srcnn_border

    return srcnn_border(arch)


def build_model(cfg, total_steps, log=print):
    """(net, optimizer, lrs): the training network of cfg (its pre_trained_path weights loaded, widened
    when pre_trained_widen) and Adam over ``total_steps`` per-step learning rates ``lrs``."""
    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    import mindspore.nn as nn

    from src.model.checkpoint import arch_from_weights, load_weights, read_checkpoint, widen_middle_filter
    from src.model.network import build_network

    net = build_network(cfg.arch, cfg.n1, cfg.n2, cfg.padding, cfg.device_target, training=True,
                        amp_level=cfg.amp_level)
    if cfg.pre_trained_path:
        weights = read_checkpoint(cfg.pre_trained_path)
        arch_from_weights(weights, cfg.pre_trained_path)
        if cfg.pre_trained_widen:
            weights = widen_middle_filter(weights, cfg.arch, cfg.pre_trained_path)
        load_weights(net, weights, cfg.pre_trained_path)
        log(f"loaded pre-trained weights from {cfg.pre_trained_path}")
    lrs = learning_rates(cfg.lr_schedule, cfg.lr, total_steps, cfg.min_lr)
    return net, nn.Adam(net.trainable_params(), learning_rate=lrs), lrs


def make_train_step(net, optimizer, arch, padding, amp_level="O0", loss_scale=1.0, distributed=False, world=1):
    """``step(lr, hr) -> loss``: one compiled update of ``net`` by ``optimizer`` on a batch (float32 numpy
    NCHW, hr the size of lr) with the MSE loss, as a Python float. ``padding`` valid: the loss uses the centre
    of hr that the smaller output covers. ``distributed``: gradients averaged over the ``world`` ranks."""
    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    import mindspore as ms
    import mindspore.nn as nn
    import mindspore.ops as ops

    model = ms.amp.auto_mixed_precision(net, amp_level) if amp_level != "O0" else net
    # O2/O3 compute in float16: a fixed loss scale keeps small gradients representable; updates are
    # never dropped (CPU has no overflow status to drive a dynamic scale)
    loss_scale = loss_scale if amp_level != "O0" else 1.0
    crop = border(arch) if padding == "valid" else 0

    def forward(lr, hr):
        out = model(lr).astype(ms.float32)
        if crop:
            hr = hr[:, :, crop:-crop, crop:-crop]
        return ops.mean(ops.square(out - hr)) * loss_scale

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)
    reducer = nn.DistributedGradReducer(optimizer.parameters, mean=True, degree=world) if distributed else None
    params = optimizer.parameters

    @ms.jit
    def train_step(lr, hr):
        loss, grads = grad_fn(lr, hr)
        if reducer is not None:
            grads = reducer(grads)
        if loss_scale != 1.0:
            # float16 layers can hand back float16 gradients: unscale in the parameters' dtype
            grads = tuple([ops.cast(g, p.dtype) / loss_scale for g, p in zip(grads, params)])
        optimizer(grads)
        return loss / loss_scale

    def step(lr, hr):
        return float(train_step(ms.Tensor(lr), ms.Tensor(hr)).asnumpy())

    return step
