# DeepLabV3+ ResNet-101 as UniMatch builds it: output stride 16 (dilated last stage), ASPP
# dilations 6/12/18, no auxiliary head, OHEM on labeled pixels (UniMatch's: mean over the kept
# pixels, min_kept per batch of 2 labeled images), Cityscapes' 19 classes.
_base_ = ['mmseg::_base_/models/deeplabv3plus_r50-d8.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2), norm_cfg=norm_cfg),
    decode_head=dict(
        dilations=(1, 6, 12, 18),
        num_classes=19,
        norm_cfg=norm_cfg,
        loss_decode=dict(_delete_=True, type='OhemCrossEntropyLoss', thresh=0.7, min_kept=200000)),
    auxiliary_head=None,
    test_cfg=dict(mode='slide', crop_size=(801, 801), stride=(534, 534)))
