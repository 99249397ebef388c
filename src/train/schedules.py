"""Per-step learning rates (MindSpore optimizers index a list by their global_step, so resuming the
optimizer state resumes the schedule)."""
import math


def learning_rates(schedule, base_lr, total_steps, min_lr=0.0):
    if schedule == "constant":
        return [float(base_lr)] * total_steps
    if schedule == "cosine":
        return [min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * step / total_steps))
                for step in range(total_steps)]
    raise ValueError(f"unknown lr_schedule {schedule!r}")
