"""How many pseudo-label pixels fp16 and bf16 autocast change against fp32, with a trained checkpoint:

    python tools/pseudo_label_agreement.py --weights runs/demo_train/checkpoint_last.pth --data-path runs/demo_train/data

runs `clustercam.harness.gpucheck.pseudo_label_agreement` (the CAM pass under each autocast, the patch affinity on, PAR, the
pseudo labels) on the CPU and prints the fraction of differing pixels for each precision."""
from clustercam.config import cli
from clustercam.harness.gpucheck import pseudo_label_agreement
from fastcore.script import Param


@cli
def main(weights: Param("a trained checkpoint (ours)", str) = None,
         data_path: Param("the data set it was trained on (VOC layout: synthetic, VOC)", str) = None,
         n_images: Param("training images to label", int) = 32,
         size: Param("image side in pixels (default: the checkpoint's input_size)", int) = None,
         scales: Param("CAM scales, comma-separated", str) = '1.0,0.75,1.25',
         bg_thr: Param("background threshold (default: the checkpoint's)", float) = None,
         device: Param("cpu (the figures in the docs) or cuda", str) = 'cpu'):
    "Fraction of pseudo-label pixels that fp16 and bf16 autocast change against fp32."
    if weights is None or data_path is None: raise ValueError("give --weights and --data-path")
    res = pseudo_label_agreement(weights, data_path, n_images, size, tuple(float(s) for s in scales.split(',')), bg_thr, device=device)
    print(f"{res['images']} images, {res['pixels']} pixels: fp16 changes {100 * res['fp16']:.3f} %, bf16 {100 * res['bf16']:.3f} % of the pseudo-label pixels")
    return res


if __name__ == '__main__':
    main()
