"""``rnnkit convert IN OUT``: convert a model file between rnnkit, PyTorch, Keras, ONNX and TF1 checkpoints."""

from __future__ import annotations

import click

from .main import cli

FORMAT_LABELS = {"rnnkit": "rnnkit model", "safetensors": "safetensors state_dict", "torch": "PyTorch state_dict",
                 "keras": "Keras .keras", "keras-h5": "Keras .h5", "onnx": "ONNX", "tf1": "TF1 checkpoint"}


@cli.command("convert")
@click.argument("source", metavar="IN", type=click.Path(dir_okay=False))
@click.argument("target", metavar="OUT", type=click.Path(dir_okay=False))
@click.option("--arch", "arch", multiple=True, metavar="SPEC",
              help="For a state_dict (.pt/.pth/.safetensors): one spec per module, in file order, checking the "
                   "sizes read off the tensors and setting what they cannot say, e.g. "
                   "'lstm:input=8,hidden=32,layers=2,bidirectional', 'rnn:activation=relu', 'gru:last' (return the "
                   "last step), 'linear:activation=softmax', 'embedding'. For a TF checkpoint: "
                   "'lstm:forget_bias=1.0,cell_clip=3'.")
@click.option("--opset", type=click.IntRange(min=14), default=None, help="ONNX opset of an .onnx OUT [default: 17].")
def convert(source: str, target: str, arch: tuple[str, ...], opset: int | None) -> None:
    """Convert the model in IN to OUT; the direction comes from the two file types.

    \b
    IN:  rnnkit .safetensors, PyTorch state_dict .pt/.pth (or a .safetensors of torch tensors),
         Keras .keras/.h5, .onnx, TF1 LSTMCell checkpoint (its prefix or .index file).
    OUT: .safetensors (rnnkit model), .onnx, .keras, .pt/.pth (a state_dict of plain tensors).
    A state_dict holds no architecture: it is read off the tensor names and shapes (see `rnnkit info IN`).

    \b
    Examples:
      rnnkit convert lstm.pt lstm.safetensors
      rnnkit convert net.pt net.safetensors --arch embedding --arch lstm:last --arch linear:activation=softmax
      rnnkit convert model.safetensors model.onnx --opset 17
      rnnkit convert classifier.keras classifier.safetensors
      rnnkit convert train/model.ckpt-20000.index lstm.safetensors --arch lstm:forget_bias=1.0
    """
    from ..convert.files import convert_file

    result = convert_file(source, target, arch=arch, opset=opset)
    model = result.model
    click.echo(f"converted {source} ({FORMAT_LABELS[result.source_format]}) -> {target} "
               f"({FORMAT_LABELS[result.target_format]}): {len(model.layers)} layers, {model.num_params():,} parameters")
    for i, layer in enumerate(model.layers):
        click.echo(f"  {i} {type(layer).__name__}: {_options(layer.get_config())}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


def _options(config: dict) -> str:
    """A layer's config without the defaults that say nothing (dtype float32, zero dropout, ...)."""
    quiet = {"dtype": "float32", "dropout": 0.0, "recurrent_dropout": 0.0, "peepholes": False, "forget_bias": 0.0,
             "cell_clip": None, "proj_clip": None, "proj_size": 0, "padding_idx": None, "num_layers": 1,
             "bidirectional": False, "merge_mode": "concat", "use_bias": True, "trainable": True}
    return " ".join(f"{k}={v}" for k, v in config.items() if k not in quiet or quiet[k] != v)
