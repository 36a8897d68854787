"""`clustercam_gpu_check` fails when training is broken: each fault below, injected into the real code path, makes a
check fail that passes without it (the chapter 51_gpu_check runs each check without faults); and a step the fp16 loss scaler skips (an inf gradient) is reported, not failed.
On the CPU, at the tiny size: fp16 autocast and `torch.amp.GradScaler('cpu')` run the same scaler logic as CUDA's."""
from collections import defaultdict
import pytest
import torch
from torch.amp.grad_scaler import _refresh_per_optimizer_state
from clustercam.harness.gpucheck import SIZES, learning_check, resume_check
from clustercam.train import ClusterCAMStep

CPU, TINY = torch.device('cpu'), SIZES['tiny']


def never_steps(monkeypatch):
    monkeypatch.setattr(torch.optim.AdamW, 'step', lambda self, closure=None: None)


def resume_drops_optimizer(monkeypatch):
    monkeypatch.setattr(torch.optim.AdamW, 'load_state_dict', lambda self, state: None)


def resume_drops_scaler(monkeypatch):
    monkeypatch.setattr(ClusterCAMStep, 'load_state_dict', lambda self, ck: None)


def scaler_never_updates(monkeypatch):
    "`update` only forgets the step's bookkeeping (else the next `step` raises): the scale and growth tracker stay."
    def update(self, new_scale=None): self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)
    monkeypatch.setattr(torch.amp.GradScaler, 'update', update)


CHECKS = {'learns fp32': lambda d: learning_check(CPU, 'off', TINY, d),
          'learns fp16': lambda d: learning_check(CPU, 'fp16', TINY, d),
          'resume fp32': lambda d: resume_check(CPU, TINY, d, amp='off'),
          'resume fp16': lambda d: resume_check(CPU, TINY, d, amp='fp16')}
FAULTS = [(never_steps, 'learns fp32'), (never_steps, 'learns fp16'), (resume_drops_optimizer, 'resume fp32'),
          (resume_drops_optimizer, 'resume fp16'), (resume_drops_scaler, 'resume fp16'), (scaler_never_updates, 'learns fp16')]


@pytest.mark.parametrize('fault,check', FAULTS, ids=[f'{f.__name__}-{c}' for f, c in FAULTS])
def test_fault_fails_the_check(fault, check, tmp_path, monkeypatch):
    fault(monkeypatch)
    r = CHECKS[check](tmp_path)
    assert r['ok'] is False, r['detail']


def test_skipped_fp16_step_is_no_failure(tmp_path, monkeypatch):
    "An inf gradient in the first step: the scaler skips it and halves the scale; the check passes and says so."
    unscale, calls = torch.amp.GradScaler.unscale_, []
    def unscale_with_inf(self, optimizer):
        if not calls: next(p for g in optimizer.param_groups for p in g['params'] if p.grad is not None).grad.view(-1)[0] = float('inf')
        calls.append(1)
        return unscale(self, optimizer)
    monkeypatch.setattr(torch.amp.GradScaler, 'unscale_', unscale_with_inf)
    r = learning_check(CPU, 'fp16', TINY, tmp_path)
    assert r['ok'] is True, r['detail']
    assert (r['skipped_steps'], r['loss_scale'], r['growth_tracker']) == (1, 2. ** 15, 7), r['detail']
