"""SAMWrapper: shapes, one encoder pass per image, frozen parts, checkpoint loading, geometry."""
import os.path as osp
import pickle

import pytest
import torch
from mmseg.registry import MODELS
from segment_anything import sam_model_registry
from segment_anything.utils.transforms import ResizeLongestSide

from mmcora.models.sam import SAMWrapper
from mmcora.models.sam.sam_wrapper import TINY_DEFAULTS

TINY = dict(TINY_DEFAULTS)  # the wrapper's own tiny dimensions


def tiny_sam(**kwargs) -> SAMWrapper:
    torch.manual_seed(0)
    return SAMWrapper(tiny=TINY, **kwargs)


def count_calls(module: torch.nn.Module) -> list:
    """Batch sizes of the outputs of every forward call of ``module``."""
    calls = []

    def hook(mod, args, out):
        calls.append((out[0] if isinstance(out, tuple) else out).shape[0])

    module.register_forward_hook(hook)
    return calls


@pytest.mark.parametrize('encoder_batch_size,encoder_calls', [(1, 2), (2, 1), (8, 1)])
def test_tiny_forward_shapes_and_one_encoding_per_image(encoder_batch_size, encoder_calls):
    sam = tiny_sam(encoder_batch_size=encoder_batch_size)
    assert (sam.img_size, sam.prompt_dim, sam.embedding_size) == (128, 32, (8, 8))
    encoder_batches = count_calls(sam.image_encoder)
    decoder_batches = count_calls(sam.mask_decoder)

    embeddings = sam.encode_images(torch.randn(2, 3, 128, 128))
    image_index = torch.tensor([0, 1, 0, 0])  # image 0: 3 queries, image 1: 1 query
    low_res = sam.decode(embeddings, torch.randn(4, 32), image_index)
    h, w, _ = SAMWrapper.preprocess_geometry(60, 100, sam.img_size)
    masks = sam.postprocess(low_res[image_index == 0], (h, w), (60, 100))

    assert embeddings.shape == (2, 32, 8, 8)
    assert low_res.shape == (4, 32, 32)
    assert masks.shape == (3, 60, 100) and masks.dtype == torch.float32
    assert len(encoder_batches) == encoder_calls and sum(encoder_batches) == 2
    assert sorted(decoder_batches) == [1, 3]  # one decoder call per image, all its queries


def test_decode_matches_segment_anything_per_query():
    sam = tiny_sam().eval()
    embeddings = sam.encode_images(torch.randn(3, 3, 128, 128) * 3)
    prompts = torch.randn(5, 32)
    image_index = torch.tensor([2, 0, 2, 1, 0])
    batched = sam.decode(embeddings, prompts, image_index)
    # Reference: segment-anything's own path for one sparse token and no mask prompt.
    _, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
    for q, image in enumerate(image_index.tolist()):
        expected, _ = sam.mask_decoder(
            image_embeddings=embeddings[image:image + 1],
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=prompts[q][None, None],
            dense_prompt_embeddings=dense,
            multimask_output=False)
        torch.testing.assert_close(batched[q], expected[0, 0], rtol=1e-4, atol=1e-5)
        # The right image matters: against another image the mask is clearly different.
        other = sam.decode(embeddings, prompts[q:q + 1], torch.tensor([(image + 1) % 3]))
        assert (other[0] - batched[q]).abs().max() > 1e-3


def test_half_precision_model():
    sam = tiny_sam()
    # The fp32 re-computation of the dense positional encoding is segment-anything's own.
    torch.testing.assert_close(
        sam.dense_positional_encoding(), sam.prompt_encoder.get_dense_pe(), rtol=0, atol=0)
    sam = sam.to(torch.bfloat16)
    prompts = torch.randn(3, 32, requires_grad=True)  # fp32, as from an fp32 projector
    embeddings = sam.encode_images(torch.randn(2, 3, 128, 128))  # fp32 preprocessor output
    low_res = sam.decode(embeddings, prompts, torch.tensor([1, 1, 0]))
    masks = sam.postprocess(low_res, (100, 128), (200, 256))
    assert (embeddings.dtype, low_res.dtype, masks.dtype) == (torch.bfloat16, torch.bfloat16,
                                                              torch.float32)
    masks.mean().backward()
    assert prompts.grad is not None and sam.mask_decoder.mask_tokens.weight.grad is not None


def test_image_encoder_in_bf16_under_an_fp32_decoder(tmp_path):
    """image_encoder_dtype='bfloat16' (the paper-size configs): the frozen encoder's weights
    in bf16 after the fp32 checkpoint loads, the decoder and its gradients in fp32."""
    fp32 = tiny_sam()
    path = tmp_path / 'sam.pth'
    torch.save(fp32.state_dict(), path)
    sam = SAMWrapper(tiny=TINY, checkpoint=str(path), image_encoder_dtype='bfloat16')
    assert {p.dtype for p in sam.image_encoder.parameters()} == {torch.bfloat16}
    assert {p.dtype
            for n, p in sam.named_parameters() if 'image_encoder' not in n} == {torch.float32}
    images = torch.randn(2, 3, 128, 128)
    embeddings = sam.encode_images(images)
    reference = fp32.encode_images(images)
    assert embeddings.dtype == torch.float32 and sam.encode_images(
        images[:0]).dtype == torch.float32
    error = (embeddings - reference).abs().max() / reference.abs().max()
    assert 0 < error < 0.05, error  # bf16 rounding, not another model
    prompts = torch.randn(3, 32, requires_grad=True)
    low_res = sam.decode(embeddings, prompts, torch.tensor([1, 1, 0]))
    assert low_res.dtype == torch.float32
    low_res.mean().backward()
    assert sam.mask_decoder.mask_tokens.weight.grad.dtype == torch.float32
    assert prompts.grad is not None


@pytest.mark.parametrize(
    'kwargs, message', [
        (dict(image_encoder_dtype='bf16'), r"image_encoder_dtype must name a floating torch dtype "
         r"such as 'bfloat16', got 'bf16'"),
        (dict(image_encoder_dtype='bfloat16',
              freeze_image_encoder=False), 'image_encoder_dtype needs freeze_image_encoder=True'),
    ],
    ids=['unknown dtype', 'trained encoder'])
def test_image_encoder_dtype_is_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_sam(**kwargs)


def test_empty_inputs():
    sam = tiny_sam()
    embeddings = sam.encode_images(torch.randn(1, 3, 128, 128))
    assert sam.encode_images(torch.zeros(0, 3, 128, 128)).shape == (0, 32, 8, 8)
    low_res = sam.decode(embeddings, torch.zeros(0, 32), torch.zeros(0, dtype=torch.long))
    assert low_res.shape == (0, 32, 32)
    assert sam.postprocess(low_res, (128, 64), (40, 20)).shape == (0, 40, 20)


def test_bad_inputs_are_rejected():
    sam = tiny_sam()
    with pytest.raises(ValueError, match='128'):
        sam.encode_images(torch.randn(1, 3, 64, 64))
    embeddings = sam.encode_images(torch.randn(1, 3, 128, 128))
    with pytest.raises(ValueError, match='prompt_embeddings'):
        sam.decode(embeddings, torch.randn(2, 16), torch.tensor([0, 0]))
    with pytest.raises(IndexError):
        sam.decode(embeddings, torch.randn(2, 32), torch.tensor([0, 1]))


def test_gradients_reach_decoder_and_prompts_only():
    sam = tiny_sam().train()
    prompts = torch.randn(4, 32, requires_grad=True)
    embeddings = sam.encode_images(torch.randn(2, 3, 128, 128))
    assert not embeddings.requires_grad  # frozen encoder ran without a graph
    low_res = sam.decode(embeddings, prompts, torch.tensor([0, 1, 0, 0]))
    sam.postprocess(low_res, (128, 96), (64, 48)).sigmoid().mean().backward()

    assert prompts.grad is not None and prompts.grad.abs().sum() > 0
    for name, param in sam.mask_decoder.named_parameters():
        if name.startswith('iou_prediction_head.'):  # unsupervised, frozen by default
            assert not param.requires_grad and param.grad is None, name
        else:
            assert param.requires_grad and param.grad is not None, name
    for part in ('transformer', 'output_upscaling', 'output_hypernetworks_mlps.0', 'mask_tokens'):
        grads = [p.grad for n, p in sam.mask_decoder.named_parameters() if n.startswith(part)]
        assert sum(g.abs().sum() for g in grads) > 0, part
    for part in (sam.image_encoder, sam.prompt_encoder):
        for name, param in part.named_parameters():
            assert not param.requires_grad and param.grad is None, name


def test_frozen_parts_stay_in_eval_mode():
    sam = tiny_sam()
    for mode in (True, False, True):
        sam.train(mode)
        assert all(not m.training for m in sam.image_encoder.modules())
        assert all(not m.training for m in sam.prompt_encoder.modules())
        assert all(m.training == mode for m in sam.mask_decoder.modules())
    # A copy (the stage-3 frozen snapshot) keeps the behaviour.
    import copy
    clone = copy.deepcopy(sam).train()
    assert not clone.image_encoder.training and clone.mask_decoder.training


def test_unfrozen_parts_train_and_get_gradients():
    sam = tiny_sam(
        freeze_image_encoder=False, freeze_prompt_encoder=False, freeze_iou_head=False).train()
    assert sam.image_encoder.training and sam.prompt_encoder.training
    embeddings = sam.encode_images(torch.randn(1, 3, 128, 128))
    assert embeddings.requires_grad
    sam.decode(embeddings, torch.randn(2, 32), torch.tensor([0, 0])).mean().backward()
    assert sam.image_encoder.patch_embed.proj.weight.grad is not None
    assert sam.prompt_encoder.no_mask_embed.weight.grad is not None


def test_registered_and_built_from_config():
    sam = MODELS.build(dict(type='SAMWrapper', model_type='tiny', tiny=dict(img_size=64)))
    assert isinstance(sam, SAMWrapper) and sam.img_size == 64
    assert sam.pixel_mean.flatten().tolist() == pytest.approx([123.675, 116.28, 103.53])
    assert sam.pixel_std.flatten().tolist() == pytest.approx([58.395, 57.12, 57.375])
    with pytest.raises(ValueError, match='unknown tiny'):
        SAMWrapper(tiny=dict(img_sz=64))
    with pytest.raises(ValueError, match='either'):
        SAMWrapper('vit_b', tiny=TINY)
    with pytest.raises(ValueError, match='vit_huge'):
        SAMWrapper('vit_huge')


def test_official_vit_b_checkpoint_loads(tmp_path):
    official = sam_model_registry['vit_b']()
    path = str(tmp_path / 'sam_vit_b.pth')
    torch.save(official.state_dict(), path)  # how the official files are saved
    saved = official.state_dict()

    sam = SAMWrapper('vit_b', checkpoint=path)
    own = sam.state_dict()
    assert (sam.img_size, sam.prompt_dim) == (1024, 256)
    assert own.keys() == saved.keys()  # the wrapper's state dict has the official format
    for name, tensor in saved.items():
        assert torch.equal(own[name], tensor), name


def test_tiny_checkpoint_round_trip(tmp_path):
    path = str(tmp_path / 'tiny.pth')
    torch.save(tiny_sam().state_dict(), path)
    torch.manual_seed(1)
    loaded = SAMWrapper(tiny=TINY, checkpoint=path)
    for name, tensor in tiny_sam().state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_missing_checkpoint_names_the_file(tmp_path):
    path = str(tmp_path / 'nowhere' / 'sam_vit_h_4b8939.pth')
    with pytest.raises(FileNotFoundError, match='sam_vit_h_4b8939.pth'):
        SAMWrapper(tiny=TINY, checkpoint=path)


def test_wrong_keys_name_the_file_and_keys(tmp_path):
    state = tiny_sam().state_dict()
    state['mask_decoder.extra.weight'] = state.pop('mask_decoder.iou_token.weight')
    path = str(tmp_path / 'renamed.pth')
    torch.save(state, path)
    with pytest.raises(RuntimeError) as error:
        SAMWrapper(tiny=TINY, checkpoint=path)
    message = str(error.value)
    assert path in message
    assert 'missing keys' in message and 'mask_decoder.iou_token.weight' in message
    assert 'unexpected keys' in message and 'mask_decoder.extra.weight' in message


def test_wrong_shapes_name_the_file(tmp_path):
    path = str(tmp_path / 'bigger.pth')
    torch.save(SAMWrapper(tiny=dict(TINY, prompt_embed_dim=64)).state_dict(), path)
    with pytest.raises(RuntimeError, match='bigger.pth.*shape mismatch'):
        SAMWrapper(tiny=TINY, checkpoint=path)


def _touch(path: str) -> None:
    open(path, 'w').close()


class _RunsCodeWhenUnpickled:
    """Unpickling this object creates a file: proof that arbitrary code would have run."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return _touch, (self.marker, )


def test_pickled_objects_are_refused(tmp_path):
    marker = str(tmp_path / 'code-ran')
    path = str(tmp_path / 'evil.pth')
    state = tiny_sam().state_dict()
    state['payload'] = _RunsCodeWhenUnpickled(marker)
    torch.save(state, path)
    with pytest.raises(pickle.UnpicklingError, match='evil.pth'):
        SAMWrapper(tiny=TINY, checkpoint=path)
    assert not osp.exists(marker)


def test_postprocess_crops_padding():
    sam = tiny_sam()
    original_hw = (50, 100)
    new_h, new_w, _ = SAMWrapper.preprocess_geometry(*original_hw, sam.img_size)
    assert (new_h, new_w) == (64, 128)  # rows 64..127 of the input are padding
    low_res = -torch.ones(2, 32, 32)
    low_res[0, new_h // 4:] = 1.0  # positive only in the padded rows
    low_res[1, :4, :8] = 1.0  # positive in the top-left of the image
    out = sam.postprocess(low_res.bfloat16(), (new_h, new_w), original_hw)
    assert out.shape == (2, 50, 100) and out.dtype == torch.float32
    assert (out[0] < 0).all()
    # Without the crop, the padded rows would have been squeezed into the bottom of the image.
    uncropped = torch.nn.functional.interpolate(low_res[:1, None], original_hw, mode='bilinear')
    assert (uncropped > 0).any()
    # Geometry is kept: input rows 0..15 and cols 0..31 map back to rows 0..12, cols 0..25.
    positive = out[1] > 0
    assert positive[:10, :20].all() and not positive[20:].any() and not positive[:, 35:].any()


@pytest.mark.parametrize('img_size', [1024, 128])
def test_preprocess_geometry_matches_segment_anything(img_size):
    # (5, 256) and (5, 2048) land on x.5 at one of the sizes: rounding is half up.
    for h, w in [(1024, 1024), (480, 640), (1080, 1920), (333, 500), (7, 1999), (2000, 3),
                 (1023, 1025), (375, 1242), (5, 256), (5, 2048)]:
        new_h, new_w, scale = SAMWrapper.preprocess_geometry(h, w, img_size)
        assert (new_h, new_w) == ResizeLongestSide.get_preprocess_shape(h, w, img_size)
        assert max(new_h, new_w) == img_size
        assert scale == pytest.approx(img_size / max(h, w))
