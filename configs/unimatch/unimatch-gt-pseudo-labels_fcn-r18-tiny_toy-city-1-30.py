# Diagnostic upper bound of unimatch_fcn-r18-tiny_toy-city-1-30.py: the same UniMatch training,
# but the unlabeled images' pseudo-labels are their ground truth (UniMatchGTPseudoLabels).
# Compared with UniMatch it measures what UniMatch's own pseudo-labels cost; compared with the
# supervised FCN on all 240 labeled images, what the unlabeled-branch machinery costs.
_base_ = ['./unimatch_fcn-r18-tiny_toy-city-1-30.py']
model = dict(type='UniMatchGTPseudoLabels')
gt_unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # instead of LoadEmptyAnnotations
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size={{_base_.crop_size}}),
    dict(type='RandomFlip', prob=0.5),
    dict(type='StrongViews', num_views=2),
    dict(type='PackSemiSegInputs', branch='unsup'),
]
train_dataloader = dict(
    dataset=dict(datasets=[
        {{_base_.labeled}},
        dict(
            type='ToyCityscapesDataset',
            data_root='data/toy_city',
            toy_city=dict(num_train=240, num_val=40, height=128, width=256, seed=0),
            data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
            ann_file='splits/1_30/unlabeled.txt',
            pipeline=gt_unlabeled_pipeline),
    ]))
