"""The machinery under `cgan_mnist.py`, one module per job.

The script on top defines the networks and the command line; these modules
never import it (training gets the network builders passed down):

- `data`: dataset descriptions (image shape, classes), loading, batching, the pixel range;
- `config`: the hyperparameters of a run, each described once;
- `sampling`: load and save a generator, `generate` (no training code);
- `sample_command`: the script's sampling command (what its flags ask for, the files it writes);
- `layers`: the project's own layers a saved generator may hold (the `--number-code` draw);
- `images`: grids, PNG, GIF and npz files;
- `morphs`, `directions`: label morphs, latent walks and sweeps; the page's latent sliders;
- `conditions`, `colour`, `folders`: what a generator takes beside its noise (its inputs, how they are read
  from data and filled in), painting digits and reading colours back, your own folders of images;
- `export`, `web_app`, `playground`: ONNX, the page's server and export, the notebook's widgets;
- `losses`, `gan`, `training`: the losses, the `keras.Model` that trains, run folders;
- `distribute`: `--distribute` on several devices or the workers of TF_CONFIG;
- `checkpoints`, `training_log`: resuming and stopping cleanly, the per-step record;
- `precision`, `budget`, `flops`: `--precision auto`, `--minutes`, a step's operations;
- `evaluation`, `judges`, `shape`: label accuracy, Frechet distances, precision, recall and diversity,
  the two feature networks they are measured with, and Morpho-MNIST's shape measures;
- `backend`, `files`, `errors`, `cli`, `diagrams`: TensorFlow set-up, atomic writes, the
  user-facing error types, command-line helpers, plot_model.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: data/, models/, cgan_mnist.h5
