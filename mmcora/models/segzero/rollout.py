"""GRPO's arithmetic: group-normalised advantages, the clipped policy loss, the k3 KL.

As in Seg-Zero's veRL/EasyR1 recipe: the advantage of a reply is its reward minus the mean of
its group, divided by the group's standard deviation (+1e-6); the policy loss is PPO's clipped
surrogate with the sampling policy as the old one; the KL to the reference is the "low
variance" k3 estimator ``exp(ref - logp) - (ref - logp) - 1`` added as a loss; both are
averaged over every reply token of the batch (token mean).
"""
from typing import Dict, Sequence, Tuple

import torch

EPS = 1e-6


def group_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """(G,) rewards of one prompt's replies -> (G,) advantages (0 when all are equal).

    Args:
        rewards (Tensor): (G,) rewards.

    Returns:
        Tensor: ``(r - mean) / (std + 1e-6)`` with the unbiased std (veRL's ``torch.std``);
        zeros for a group of one.
    """
    if rewards.numel() < 2:
        return torch.zeros_like(rewards)
    return (rewards - rewards.mean()) / (rewards.std() + EPS)


def k3_kl(logp: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(policy || reference), >= 0, from log-probabilities."""
    delta = (ref - logp).clamp(-20., 20.)
    return torch.exp(delta) - delta - 1.


class GRPOLoss:
    """Clipped policy loss and KL, token-mean over a batch of groups.

    Args:
        clip_eps (float): PPO clip range (0.2).
        kl_coef (float): Weight of the KL loss (Seg-Zero: 5e-3).
    """

    def __init__(self, clip_eps: float = 0.2, kl_coef: float = 5e-3) -> None:
        self.clip_eps = clip_eps
        self.kl_coef = kl_coef

    def __call__(self, parts: Sequence[Tuple[torch.Tensor, ...]]) -> Dict[str, torch.Tensor]:
        """Losses of groups ``(logp, old_logp, ref_logp, advantages, mask)``.

        Args:
            parts (Sequence[Tuple[torch.Tensor, ...]]): Per prompt: (G, L) policy log p (with
                grad), (G, L) sampling log p, (G, L) reference log p, (G,) advantages, (G, L)
                reply mask.

        Returns:
            dict: ``loss_policy``, ``loss_kl`` (weighted) and ``kl`` (unweighted, for logs).
        """
        policy, kl, tokens = 0., 0., 0
        for logp, old, ref, adv, mask in parts:
            mask = mask.to(logp.dtype)
            ratio = torch.exp(logp - old.detach())
            adv = adv.view(-1, 1).to(logp.dtype)
            surrogate = torch.minimum(ratio * adv,
                                      ratio.clamp(1 - self.clip_eps, 1 + self.clip_eps) * adv)
            policy = policy - (surrogate * mask).sum()
            kl = kl + (k3_kl(logp, ref.detach()) * mask).sum()
            tokens += int(mask.sum())
        tokens = max(tokens, 1)
        return dict(
            loss_policy=policy / tokens,
            loss_kl=self.kl_coef * kl / tokens,
            kl=(kl / tokens).detach())
