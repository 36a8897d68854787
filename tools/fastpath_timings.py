"""Paired timings of the CPU speed paths that alter the order of sums, against their plain versions, in one process.

    python tools/fastpath_timings.py [--threads 2]

For each candidate, the special and the plain version run alternately (7 to 201 times, after a warm-up) and the
median of the per-pair ratios special / plain is printed: below 1 the special version is faster. The orders that
only reproduced the authors' rounding (removed from `clustercam.fastpaths`, chapter `14_fastpaths`) are written
out here, so that the decision can be checked again. Shapes: the CAM batch of 4 images and their flips, DeiT-S
(6 heads of 64) at 448 with 20 classes; PAR at half resolution of a 448 crop with 21 channels."""
import argparse, statistics, sys, time
import torch
from clustercam import fastpaths
from clustercam.refine import PAR


def paired(name, special, plain, reps=7):
    "Print the median ratio of alternating runs of `special` and `plain`."
    special(); plain()
    ts, tp = [], []
    for _ in range(reps):
        t = time.perf_counter(); special(); ts.append(time.perf_counter() - t)
        t = time.perf_counter(); plain(); tp.append(time.perf_counter() - t)
    ratios = sorted(a / b for a, b in zip(ts, tp))
    print(f"{name}: {statistics.median(ts) * 1e3:.2f} ms against {statistics.median(tp) * 1e3:.2f} ms, "
          f"median ratio {statistics.median(ratios):.2f} (quartiles {ratios[len(ratios) // 4]:.2f}-{ratios[3 * len(ratios) // 4]:.2f})", flush=True)


def cluster_per_head(Q, G):
    "A_sp one head at a time (the authors' products)."
    return torch.stack([Q @ G[:, h].transpose(-2, -1) for h in range(G.shape[1])], 1).transpose(-2, -1)


def affinity_per_class(R, cams):
    "R cam_k one mat-vec per class (the authors' rounding)."
    flat = cams.flatten(2)
    return torch.stack([R @ flat[:, k, :, None] for k in range(flat.shape[1])], 1).reshape(cams.shape)


def softmax_wide(logits):
    "softmax over dim 1 of a (1,n,1,1) tensor through the vectorised kernel (the authors' rounding)."
    return logits.expand(*logits.shape[:-1], 64).softmax(1)[..., :1]


def neighbour_sum_blocks(neighbours, weights):
    "The weighted sum of the 48 neighbours in blocks of 16, then a running total (torch.sum's order)."
    total = None
    for j, nbr in enumerate(neighbours):
        if j % 16 == 0: block = nbr * weights[:, j:j + 1]
        else: block.add_(nbr * weights[:, j:j + 1])
        if j % 16 == 15 or j == weights.shape[1] - 1: total = block if total is None else total.add_(block)
    return total


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--threads', type=int, default=2, help="torch threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    B, H, K, N, M, Dh = 8, 6, 20, 784, 196, 64
    torch.set_grad_enabled(False)
    Q, G = torch.rand(B, N, M, generator=g).softmax(-1), torch.rand(B, H, K + M, K + M, generator=g)[:, :, :K, K:]
    A_cp, mix = torch.rand(B, H, K, N, generator=g), 0.3
    paired('cluster_to_patch, one product (kept) vs broadcast G Q^T, with the mix', lambda: (1 - mix) * A_cp + mix * fastpaths.cluster_to_patch(Q, G),
           lambda: (1 - mix) * A_cp + mix * (G @ Q.transpose(1, 2)[:, None]), 51)
    paired('cluster_to_patch, head by head (removed) vs broadcast G Q^T, with the mix', lambda: (1 - mix) * A_cp + mix * cluster_per_head(Q, G),
           lambda: (1 - mix) * A_cp + mix * (G @ Q.transpose(1, 2)[:, None]), 51)
    R, cams = torch.rand(B, N, N, generator=g), torch.rand(B, K, 28, 28, generator=g)
    paired('affinity per class (removed) vs one product', lambda: affinity_per_class(R, cams),
           lambda: (cams.flatten(2) @ R.transpose(1, 2)).view_as(cams), 21)
    logits = -torch.linspace(0, 3, 48).view(1, 48, 1, 1) ** 2
    paired('wide softmax (removed) vs softmax', lambda: softmax_wide(logits), lambda: logits.softmax(1), 201)
    w, out = torch.rand(B, H, 128, N + K, generator=g)[:, :, :, K:], torch.empty(B, 128, N)
    paired('head_mean (kept) vs mean of a copy, 128 x 784', lambda: fastpaths.head_mean(w, out=out), lambda: torch.mean(w.contiguous(), 1, out=out), 21)
    w2, out2 = torch.rand(B, H, 100, 621 + K, generator=g)[:, :, :, K:], torch.empty(B, 100, 621)
    paired('head_mean (kept) vs mean of a copy, 100 x 621', lambda: fastpaths.head_mean(w2, out=out2), lambda: torch.mean(w2.contiguous(), 1, out=out2), 21)
    q, k = torch.randn(B, H, N + K, Dh, generator=g), torch.randn(B, H, N + K, Dh, generator=g)
    kt, scale = k.transpose(-2, -1).contiguous(), Dh ** -0.5
    def scores(prescale):
        qq = q * scale if prescale else q
        for i in range(0, N + K, 128):
            s = qq[:, :, i:i + 128] @ kt
            if not prescale: s.mul_(scale)
            torch.softmax(s, -1, out=s)
    paired('queries scaled once (kept) vs every block of scores', lambda: scores(True), lambda: scores(False), 11)
    par = PAR()
    masks, aff = torch.rand(2, 21, 224, 224, generator=g), torch.rand(2, 48, 224, 224, generator=g)
    paired('PAR step in blocks of 16 (removed) vs in place', lambda: neighbour_sum_blocks(par.neighbours(masks), aff),
           lambda: par.propagate(masks, aff), 7)
    return 0


if __name__ == '__main__':
    sys.exit(main())
