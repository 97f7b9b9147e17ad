"""ReasoningSegInferencer: masks, overlay, encoding reuse, bad input."""
import os.path as osp

import numpy as np
import pytest

CONFIG = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'cora', 'toy-city_1-30_tiny.py')


@pytest.fixture(scope='module')
def image(toy_city_root):
    return osp.join(toy_city_root, 'leftImg8bit', 'val', 'frankfurt',
                    'frankfurt_000000_000019_leftImg8bit.png')


def _count_encoder_calls(inferencer):
    calls = []
    handles = [
        inferencer.model.sam.image_encoder.register_forward_hook(
            lambda m, i, o: calls.append('sam')),
        inferencer.model.mllm.model.model.vision_tower.register_forward_hook(
            lambda m, i, o: calls.append(('clip', i[0].shape[0]) if i else 'clip'))
    ]
    return calls, handles


def test_masks_overlay_and_encoding_reuse(inferencer, image):
    calls, handles = _count_encoder_calls(inferencer)
    try:
        first = inferencer(image, ['Segment the car.', 'Segment the sky.', 'Segment the road.'])
        second = inferencer(image, 'Segment the bus.')
    finally:
        for handle in handles:
            handle.remove()
    assert first['masks'].shape == (3, 128, 256) and first['masks'].dtype == bool
    assert second['masks'].shape == (1, 128, 256)
    assert first['visualization'].shape[1] == 256 and first['visualization'].shape[0] > 128
    assert len(first['texts']) == 3
    assert calls.count('sam') == 1  # one SAM encoding for both calls and all four queries
    assert len([c for c in calls if c != 'sam']) == 1


def test_same_result_as_one_query_at_a_time(inferencer, image):
    queries = ['Segment the car.', 'Segment the sky.']
    together = inferencer(image, queries, draw=False)['masks']
    for i, query in enumerate(queries):
        assert np.array_equal(inferencer(image, query, draw=False)['masks'][0], together[i])


def test_anchor_queries_and_array_input(inferencer, image):
    import cv2
    array = cv2.imread(image)
    anchor = np.zeros(array.shape[:2], bool)
    anchor[70:100, 40:90] = True
    result = inferencer(
        array, ['Segment the car to the left of the person <anchor>.'],
        anchors=[anchor],
        draw=False)
    assert result['masks'].shape == (1, 128, 256)


def test_bad_input_is_explained(inferencer, image, tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.png'):
        inferencer(str(tmp_path / 'nowhere.png'), 'Segment the car.')
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='broken.png: not a readable image'):
        inferencer(str(broken), 'Segment the car.')
    with pytest.raises(ValueError, match=r'\(H, W, 3\) uint8 BGR'):
        inferencer(np.zeros((10, 10), np.uint8), 'Segment the car.')
    with pytest.raises(ValueError, match=r'anchor 0 is \(5, 5\)'):
        inferencer(image, 'Segment the car <anchor>.', anchors=[np.zeros((5, 5), bool)])
    with pytest.raises(ValueError, match=r'<array> query 0: the prompt has \d+ tokens') as e:
        inferencer(np.zeros((64, 64, 3), np.uint8), 'segment ' * 2100)
    assert 'torch' not in str(e.value)


def test_set_image_then_predict_equals_call(inferencer, image):
    """Explicit encoding reuse (as SamPredictor): set once, predict many, reset drops it."""
    calls, handles = _count_encoder_calls(inferencer)
    try:
        inferencer.reset_image()
        assert not inferencer.is_image_set
        with pytest.raises(RuntimeError, match='set_image'):
            inferencer.predict('Segment the car.')
        inferencer.set_image(image)
        inferencer.set_image(image)  # the same pixels: encodings kept
        explicit = [
            inferencer.predict(q, draw=False)['masks']
            for q in ('Segment the car.', 'Segment the sky.')
        ]
        assert calls.count('sam') == 1
        inferencer.reset_image()
        assert not inferencer.is_image_set
        together = inferencer(image, ['Segment the car.', 'Segment the sky.'], draw=False)
        assert calls.count('sam') == 2  # reset dropped the encodings
    finally:
        for handle in handles:
            handle.remove()
    assert np.array_equal(np.concatenate(explicit), together['masks'])


def test_pipeline_is_the_config_test_pipeline_without_loading(inferencer):
    from mmengine.config import Config

    from mmcora.apis.inferencer import inference_pipeline
    cfg = Config.fromfile(CONFIG)
    test_steps = [step['type'] for step in cfg.test_dataloader.dataset.pipeline]
    assert [type(t).__name__ for t in inferencer.pipeline.transforms
            ] == [t for t in test_steps if not t.startswith('Load')]
    cfg.test_dataloader.dataset.pipeline[2]['size'] = 512  # SAMResize, not the model's 256
    with pytest.raises(
            ValueError, match=r"SAMResize resizes to 512 px but the model's "
            r'sam.img_size is 256'):
        inference_pipeline(cfg, inferencer.model)
    del cfg.test_dataloader.dataset.pipeline[-1]
    cfg.test_dataloader.dataset.pipeline[2]['size'] = 256
    with pytest.raises(ValueError, match='must end with PackReasoningInputs'):
        inference_pipeline(cfg, inferencer.model)


def test_built_model_needs_its_config(inferencer):
    from mmcora.apis import ReasoningSegInferencer
    with pytest.raises(TypeError, match='cfg='):
        ReasoningSegInferencer(inferencer.model)
    assert ReasoningSegInferencer(inferencer.model, cfg=CONFIG).model is inferencer.model


@pytest.mark.parametrize('cuda', [True, False], ids=['with a GPU', 'without'])
def test_a_model_built_from_its_config_goes_to_the_gpu_when_there_is_one(
        inferencer, inferencer_cfg, monkeypatch, cuda):
    import torch

    from mmcora.apis import ReasoningSegInferencer
    from mmcora.apis import inferencer as module
    moved = []
    model = inferencer.model
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    monkeypatch.setattr(module.MODELS, 'build', lambda cfg: model)  # "built" from the config
    monkeypatch.setattr(model, 'to', lambda device: moved.append(device) or model)
    ReasoningSegInferencer(inferencer_cfg)
    assert moved == ['cuda' if cuda else 'cpu']
    moved.clear()
    ReasoningSegInferencer(model, cfg=inferencer_cfg)  # a given model stays where it is
    assert moved == []
