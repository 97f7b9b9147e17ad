"""tools/train.py --amp: bf16 autocast on GPUs that support it, mmseg's fp16 otherwise."""
import pytest

from mmcora.engine import amp_optim_wrapper

ADAMW = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-4), clip_grad=None)


def test_bf16_gpu_gets_bf16_autocast_without_loss_scaling():
    wrapper = amp_optim_wrapper(ADAMW, cuda=True, bf16=True)
    assert (wrapper.type, wrapper.dtype, wrapper.loss_scale) == ('AmpOptimWrapper', 'bfloat16', 1.0)
    assert wrapper.optimizer == ADAMW['optimizer'] and ADAMW['type'] == 'OptimWrapper'  # a copy


def test_older_gpu_gets_mmseg_fp16_with_dynamic_scaling():
    wrapper = amp_optim_wrapper(ADAMW, cuda=True, bf16=False)
    assert (wrapper.type, wrapper.loss_scale) == ('AmpOptimWrapper', 'dynamic')
    assert 'dtype' not in wrapper


def test_a_config_already_on_amp_is_kept():
    amp = dict(ADAMW, type='AmpOptimWrapper', dtype='float16')
    assert amp_optim_wrapper(amp, cuda=True, bf16=True) == amp


@pytest.mark.parametrize(
    'wrapper, cuda, error, message', [
        (ADAMW, False, SystemExit, '--amp needs a GPU'),
        (dict(ADAMW, type='MyOptimWrapper'), True, ValueError,
         "--amp turns optim_wrapper.type OptimWrapper into AmpOptimWrapper, but the config has "
         "'MyOptimWrapper'"),
    ],
    ids=['no GPU', 'another wrapper'])
def test_amp_refusals(wrapper, cuda, error, message):
    with pytest.raises(error, match=message):
        amp_optim_wrapper(wrapper, cuda=cuda, bf16=True)
