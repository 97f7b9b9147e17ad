"""mmcora's own registries, for components that have no home among mmseg's.

``REWARDS`` holds the reward terms of the reinforcement-learning reasoners (Seg-Zero's format
and accuracy rewards): pure functions of a reply and its target, built from config as every
other component is (``REWARDS.build(dict(type='BoxIoUReward', threshold=0.5))``).
"""
from mmengine.registry import Registry

REWARDS = Registry('reward', scope='mmcora', locations=['mmcora.models.segzero'])
