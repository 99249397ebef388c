"""Training scalars and a validation image as TensorBoard event files (tensorboardX), in
output_path/tensorboard: ``tensorboard --logdir OUTPUT/tensorboard`` shows them.

Events are written synchronously, each batch flushed before the call returns: tensorboardX's SummaryWriter
writes from a thread through a multiprocessing queue, where a full disk would be a traceback in that thread
and a blocked queue in the training loop instead of the run's one-line error. A resumed run writes a new
event file that opens with the purge marker SummaryWriter(purge_step=...) writes: TensorBoard then drops
the events of earlier files from that step on, which the resumed run writes again.
"""
import glob
import os
import time

import numpy as np

from src.utils.file_io import DISK_FULL, disk_full

EVENTS_FOLDER = "tensorboard"
IMAGE_SIDE = 256  # the image shown is a centre crop of at most this side: event files stay small


def side_by_side(sr_y, hr_y, side=IMAGE_SIDE):
    """The network's output and the truth (uint8 HxW each), the same centre crop of at most ``side`` pixels
    of each, left and right of a 4-pixel white gap: one uint8 image."""
    height, width = hr_y.shape
    h, w = min(height, side), min(width, side)
    top, left = (height - h) // 2, (width - w) // 2
    crop = (slice(top, top + h), slice(left, left + w))
    gap = np.full((h, 4), 255, np.uint8)
    return np.concatenate([sr_y[crop], gap, hr_y[crop]], axis=1)


class EventLog:
    """One event file of a run's TensorBoard folder ``folder``. ``start_step`` 0: a fresh run, whose earlier
    event files there (of a run that left no checkpoint) are deleted; else a resume from that step."""

    def __init__(self, folder, start_step=0):
        # tensorboardX loads here, for a run that writes events: its import takes about half a second
        from tensorboardX.event_file_writer import EventsWriter

        os.makedirs(folder, exist_ok=True)
        if not start_step:
            for old in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
                os.remove(old)
        # the start step and pid in the name: two starts within one second never share a file
        self._writer = EventsWriter(os.path.join(folder, "events"), f".{start_step}.{os.getpid()}")
        self.path = self._writer._file_name  # pylint: disable=protected-access
        events = []
        if start_step:
            # tensorboardX imported here, not at the top: only the path that needs it loads it
            from tensorboardX.proto.event_pb2 import Event, SessionLog

            events.append(Event(step=start_step + 1, wall_time=time.time(),
                                session_log=SessionLog(status=SessionLog.START)))
        self._write(events)  # the file's header (written by EventsWriter) on disk now, not at close

    def _write(self, events):
        try:
            for event in events:
                self._writer.write_event(event)
            self._writer.flush()
        except OSError as err:
            if err.errno in DISK_FULL:
                raise disk_full(self.path, "TensorBoard events") from None
            raise

    def _summary_event(self, step, values):
        # tensorboardX imported here, not at the top: only the path that needs it loads it
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        return Event(step=int(step), wall_time=time.time(), summary=Summary(value=values))

    def scalars(self, step, values):
        """``values``: {tag: number} at ``step``."""
        # tensorboardX imported here, not at the top: only the path that needs it loads it
        from tensorboardX.proto.summary_pb2 import Summary

        self._write([self._summary_event(step, [Summary.Value(tag=tag, simple_value=float(value))
                                                for tag, value in values.items()])])

    def image(self, step, tag, pixels):
        """``pixels``: a uint8 HxW (grey) or HxWx3 image, stored as PNG."""
        # tensorboardX imported here, not at the top: only the path that needs it loads it
        from tensorboardX.summary import image

        pixels = np.asarray(pixels, np.uint8)
        hwc = pixels[:, :, None] if pixels.ndim == 2 else pixels
        summary = image(tag, hwc, dataformats="HWC")
        self._write([self._summary_event(step, list(summary.value))])

    def close(self, quiet=False):
        """Close the file; ``quiet``: ignore a failure to (the run already stops with an error of its own)."""
        try:
            self._writer.close()
        except OSError:
            if not quiet:
                raise
