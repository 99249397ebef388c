"""Training batches from a MindRecord of patch pairs: deterministic, sharded by rank, resumable at any step.

The order is a function of (seed, epoch) only: epoch e shuffles all patches with a generator seeded by
(seed, e) and cuts them into global batches of batch_size * world; rank r takes the r-th slice of each.
So resuming at step s re-creates exactly the batches an uninterrupted run would have seen, and the union
of the ranks' batches is the single-device batch of size batch_size * world.
"""
import numpy as np

from src.data.mindrecord import inspect_mindrecord
from src.utils.errors import UserError


def dihedral(batch, codes):
    """Apply one of the 8 flips/rotations per sample: code k -> rot90 by k % 4, then a flip if k >= 4."""
    out = np.empty_like(batch)
    for i, code in enumerate(codes):
        sample = np.rot90(batch[i], code % 4, axes=(-2, -1))
        out[i] = sample[..., ::-1] if code >= 4 else sample
    return out


class PatchBatches:
    def __init__(self, path, batch_size, rank=0, world=1, seed=1, augment=False):
        info = inspect_mindrecord(path)
        self.file, self.count, self.patch_size, self.meta = (info["file"], info["count"], info["patch_size"],
                                                               info["meta"])
        self.batch_size, self.rank, self.world = batch_size, rank, world
        self.seed, self.augment = seed, augment
        self.steps_per_epoch = self.count // (batch_size * world)
        if self.steps_per_epoch == 0:
            raise UserError(f"{self.file} has {self.count} patches, fewer than one global batch "
                            f"(batch_size={batch_size} x {world} device(s))")

    def epoch_indices(self, epoch):
        """[steps_per_epoch, batch_size] patch indices this rank reads in `epoch`."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.count)
        order = order[:self.steps_per_epoch * self.batch_size * self.world]
        return order.reshape(self.steps_per_epoch, self.world, self.batch_size)[:, self.rank, :]

    def batches(self, start_step=0):
        """Yield (step, lr, hr) from global step `start_step` on, epoch after epoch, forever."""
        # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
        import mindspore.dataset as ds

        step = start_step
        while True:
            epoch, skip = divmod(step, self.steps_per_epoch)
            indices = self.epoch_indices(epoch)[skip:].reshape(-1).tolist()
            data = ds.MindDataset(self.file, columns_list=["lr", "hr"], sampler=ds.SubsetSampler(indices))
            data = data.batch(self.batch_size, drop_remainder=True)
            for lr, hr in data.create_tuple_iterator(output_numpy=True, num_epochs=1):
                if self.augment:
                    codes = np.random.default_rng([self.seed, step, self.rank]).integers(0, 8, len(lr))
                    lr, hr = dihedral(lr, codes), dihedral(hr, codes)
                yield step, lr, hr
                step += 1
