# UniMatch Cityscapes recipe on the 1/4 partition (UniMatch: 66960 iterations).
_base_ = ['./unimatch_deeplabv3plus-r101_cityscapes-1-30.py']
max_iters = 66960
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(
            type='CityscapesDataset',
            data_root='data/cityscapes',
            data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
            ann_file='splits/1_4/labeled.txt',
            pipeline={{_base_.labeled_pipeline}}),
        dict(
            type='CityscapesDataset',
            data_root='data/cityscapes',
            data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
            ann_file='splits/1_4/unlabeled.txt',
            pipeline={{_base_.unlabeled_pipeline}}),
    ]))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters)
