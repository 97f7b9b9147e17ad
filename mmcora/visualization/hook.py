"""Draw predicted masks and query texts during validation and testing."""
import os.path as osp
from typing import Optional, Sequence

import mmcv
from mmengine.hooks import Hook
from mmengine.visualization import Visualizer
from mmseg.registry import HOOKS

from .draw import draw_reasoning_masks


@HOOKS.register_module()
class ReasoningVisualizationHook(Hook):
    """Save images with their predicted masks and queries (``tools/test.py --show-dir``).

    Args:
        draw (bool): Whether to draw at all (``--show``/``--show-dir`` turn it on).
        interval (int): Draw every ``interval``-th image.
        show (bool): Show in a window as well.
        wait_time (float): Seconds a shown image stays.
    """

    def __init__(self,
                 draw: bool = False,
                 interval: int = 50,
                 show: bool = False,
                 wait_time: float = 0.) -> None:
        self.draw, self.interval, self.show, self.wait_time = draw, interval, show, wait_time
        self._index = 0

    def _draw(self, outputs: Sequence, prefix: str) -> None:
        if not self.draw:
            return
        visualizer = Visualizer.get_current_instance()
        for sample in outputs:
            self._index += 1
            if self._index % self.interval:
                continue
            image = mmcv.imread(sample.img_path, channel_order='rgb')
            texts = [q['text'] for q in sample.queries]
            boxes = sample.metainfo.get('pred_boxes')  # Seg-Zero: box and points, no reply
            drawn = draw_reasoning_masks(
                image,
                sample.pred_masks.cpu().numpy(),
                texts,
                replies=None if boxes is not None else sample.metainfo.get('pred_texts'),
                boxes=boxes,
                points=sample.metainfo.get('pred_points'))
            name = f'{prefix}_{osp.basename(sample.img_path)}'
            if self.show:
                visualizer.show(drawn, win_name=name, wait_time=self.wait_time)
            visualizer.add_image(name, drawn, step=self._index)

    def after_val_iter(self,
                       runner,
                       batch_idx: int,
                       data_batch: Optional[dict] = None,
                       outputs: Optional[Sequence] = None) -> None:
        self._draw(outputs or [], 'val')

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence] = None) -> None:
        self._draw(outputs or [], 'test')
