"""The harness around the library: the demo, the study, benchmarks, the GPU self-check and the demo backbone's pretraining. The library (`clustercam.*`) never imports it."""
