# The same FCN and schedule as fcn_r18-tiny_toy-city-1-30.py on all 240 training images: the
# full-label ceiling that a semi-supervised method on 1/30 is measured against.
_base_ = ['./fcn_r18-tiny_toy-city-1-30.py']
train_dataloader = dict(dataset=dict(ann_file='splits/train.txt'))
