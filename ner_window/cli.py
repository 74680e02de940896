"""The command line: parse, call the library, print.  Everything here is reachable from Python.

User errors (NerWindowError) are printed on one line with exit code 2 and no
traceback; ``--debug`` (or NER_WINDOW_DEBUG=1) shows the traceback.  Each
command imports its stage lazily so ``ner-window predict`` loads only numpy and
the prediction path.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys

import click

from .errors import NerWindowError


_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2
_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def _blas_one_thread() -> None:
    """Before numpy loads: one OpenBLAS thread for the tagging commands, unless the user chose.

    Tagging multiplies no matrices (slots.py gathers and adds rows; tagger.py, pipeline.py), so
    OpenBLAS's thread pool is only start-up cost there: 50-90 ms of a cold `predict` on 2 cores
    (scripts/cold_start.py).  Training and evaluate keep the library's default."""
    if "numpy" not in sys.modules and not any(v in os.environ for v in _BLAS_THREAD_VARS):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


class _Group(click.Group):
    """Turns the project's errors into one line on stderr and an exit code."""

    def main(self, *args, **kwargs):
        # click's own usage errors (a bad option value, a missing argument) as one line too
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except _NO_ARGS_IS_HELP as e:  # `ner-window` or `ner-window data` alone: the help, as click shows it
            e.show()
            sys.exit(e.exit_code)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx else "ner-window"
            click.echo(f"ner-window: error: {e.format_message()} (see `{where} --help`)", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("ner-window: interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        from .files import signals_raise

        try:
            # SIGTERM as well as SIGINT raises, so every finally runs: no temporary file is left behind
            # (train installs its own handlers once training starts; serve leaves them to uvicorn)
            with signals_raise() if ctx.invoked_subcommand != "serve" else contextlib.nullcontext():
                return super().invoke(ctx)
        except NerWindowError as e:
            if (ctx.obj or {}).get("debug") or os.environ.get("NER_WINDOW_DEBUG"):
                raise
            click.echo(f"ner-window: error: {e}", err=True)
            ctx.exit(getattr(e, "exit_code", 2))
        except BrokenPipeError:
            # `ner-window predict --file big.txt | head`: the reader left; that is not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(0)
        except KeyboardInterrupt as e:
            # Ctrl-C or SIGTERM (files.signals_raise) before training installs its handler, or while
            # tagging or evaluating: one line, the usual 128 + signal number
            if (ctx.obj or {}).get("debug") or os.environ.get("NER_WINDOW_DEBUG"):
                raise
            signum = getattr(e, "signum", 2)
            done = getattr(e, "done", "")
            click.echo(f"ner-window: interrupted by {str(e) or 'SIGINT'}" + (f"; {done}" if done else ""), err=True)
            ctx.exit(128 + signum)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="ner-window")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """ner-window: a named-entity window classifier trained by hand-written backpropagation."""
    ctx.obj = {"debug": debug}


# --- train --------------------------------------------------------------------------


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config (see configs/).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Run directory, new or empty [runs/<config name>, or the first free runs/<config name>-2, -3 ...].")
@click.option("--overwrite", is_flag=True, help="Replace the previous run in --out (never other files).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a config value.")
@click.option("--resume", "resume", type=click.Path(file_okay=False), help="Continue the run in this directory.")
def train(config_path, out_dir, overwrite, overrides, resume) -> None:
    """Train a model; the run directory gets the model, metrics.csv, plots and a checkpoint."""
    from pathlib import Path

    from .config import load_config
    from .errors import ConfigError
    from .train import Interrupted, train as run_train

    if resume and (config_path or overrides or out_dir or overwrite):
        raise ConfigError("--resume continues a run with its saved config, in its directory; "
                          "drop --config/--set/--out/--overwrite")
    if not resume and not config_path:
        raise ConfigError("give --config FILE (e.g. configs/base.yaml) or --resume RUN_DIR")
    try:
        if resume:
            run_train(resume=resume, log=click.echo)
        else:
            cfg = load_config(config_path, list(overrides))
            run_train(cfg, out_dir=out_dir, log=click.echo, config_name=Path(config_path).stem, overwrite=overwrite)
    except Interrupted as e:
        click.echo(f"ner-window: {e}", err=True)
        sys.exit(e.exit_code)


# --- evaluate ------------------------------------------------------------------------


@cli.command()
@click.option("--model", "model_dir", type=click.Path(), help="Model or run directory [runs/latest].")
@click.option("--data", "data_path", required=True, type=click.Path(), help="Labelled CoNLL file.")
@click.option("--scheme", default=None, help="Tag scheme of the file [the model's training scheme].")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--predictions", type=click.Path(dir_okay=False), help="Write `token gold pred` lines for conlleval.")
@click.option("--pr-curve", "pr_curve", type=click.Path(dir_okay=False), help="Write a PR curve CSV (and PNG).")
@click.option("--errors", "n_errors", type=click.IntRange(min=0), default=0,
              help="List the N most confident errors of each kind.")
@click.option("--strict", is_flag=True, help="Reject tag sequences the scheme forbids (e.g. I- after O in iob2).")
@click.option("--location-types", "location_types", metavar="TYPE[,TYPE]", default=None,
              help="Gold entity types that are locations, e.g. location or GPE,LOC,FAC [the model's data.location_types].")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Tag LOC where P(location) >= this [the model's: fixed by its config or tuned on dev]; binary models only.")
def evaluate(model_dir, data_path, scheme, fmt, predictions, pr_curve, n_errors, strict, location_types,
             threshold) -> None:
    """Score a saved model on a labelled file: LOC token and entity P/R/F1."""
    from .errors import WriteError
    from .evaluate import evaluate_file, format_report
    from .tagger import default_model_path

    types = None if location_types is None else location_types.split(",")
    try:
        report = evaluate_file(model_dir or default_model_path(), data_path, scheme=scheme, predictions=predictions,
                               pr_curve=pr_curve, n_errors=n_errors, strict=strict, location_types=types,
                               threshold=threshold)
    except WriteError as e:  # the scores are complete: print them, then the one-line error (exit 2)
        report = getattr(e, "report", None)
        if report is not None:
            click.echo(json.dumps(report, indent=1) if fmt == "json" else format_report(report))
        raise
    for warning in report["warnings"]:
        click.echo(f"ner-window: warning: {warning}", err=True)
    click.echo(json.dumps(report, indent=1) if fmt == "json" else format_report(report))


# --- predict -------------------------------------------------------------------------


@cli.command()
@click.argument("text", nargs=-1)
@click.option("--file", "file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Tag every line of this file ('-' for stdin).")
@click.option("--encoding", default=None, metavar="CODEC",
              help="Encoding of --file or stdin [its byte-order mark's, else UTF-8], e.g. latin-1.")
@click.option("--model", "model_dir", type=click.Path(), help="Model or run directory [$NER_WINDOW_MODEL or runs/latest].")
@click.option("--format", "fmt", type=click.Choice(["text", "conll", "json", "jsonl"]), default="text", show_default=True,
              help="json: one document (TEXT: an object; --file or stdin: an array, one object a line).")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Tag LOC where P(location) >= this [the model's: fixed by its config or tuned on dev]; binary models only.")
def predict(text, file, encoding, model_dir, fmt, threshold) -> None:
    """Tag TEXT (or --file, or stdin) and mark the locations.  Every token's p is P(location)."""
    _blas_one_thread()
    from .errors import DataError
    from .files import Signalled, line_writer
    from .tagger import TagWriter, Tagger
    from .textio import read_blocks, read_pieces

    if text and file:
        raise DataError(f"give TEXT or --file, not both (--file {file} and {len(text)} word(s) of TEXT)")
    if text and encoding:
        raise DataError("--encoding applies to --file and stdin; TEXT is already text (drop --encoding)")
    tagger = Tagger.load(model_dir, threshold)
    if threshold is not None and not tagger.binary:
        raise DataError(f"--threshold applies to binary models (window output); {tagger.rule} (drop --threshold)")
    if not text and not file and sys.stdin.isatty():
        raise DataError("nothing to tag: give TEXT, --file FILE, or pipe text on stdin")
    # A stream allocates millions of short-lived token objects and no reference cycles;
    # at the default thresholds the cyclic garbage collector rescans them for ~20% of
    # the run (measured on 1M tokens), so it runs less often here.
    gc.set_threshold(100_000, 10, 10)
    out = line_writer()
    try:
        with out:
            if text or fmt == "json":
                writer = TagWriter(out.write, fmt, array=not text)
                items = tagger.tag_many([" ".join(text)]) if text else tagger.tag_pieces(read_pieces(file or "-", encoding))
                for item in items:
                    writer.add(item)
                writer.close()
            else:  # a stream: tokenize -> ids -> score -> write over chunks of lines (pipeline.py)
                from .pipeline import LinePipeline

                LinePipeline(tagger, fmt).run_pieces(read_blocks(file or "-", encoding), out.write)
    except Signalled as e:  # counted once the writer has written out what it holds
        e.done = f"{out.lines:,} complete lines written to {out.name}"
        raise
    _ENDED.append("predict")  # written and closed: console_main may end the process at once


# --- tag ---------------------------------------------------------------------------------


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for the parts, job.json and manifest.json (created; a rerun continues it).")
@click.option("--model", "model_dir", type=click.Path(), help="Model or run directory [$NER_WINDOW_MODEL or runs/latest].")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "conll", "text"]), default="jsonl", show_default=True)
@click.option("--workers", type=click.IntRange(1, 1024), default=None,
              help="Tag on a local Dask cluster of N processes [one process, no Dask].")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Tag on a running Dask cluster (`dask scheduler`, `dask worker ADDRESS` on each machine).")
@click.option("--partition-mb", type=click.FloatRange(0.001, None), default=64.0, show_default=True,
              help="Cut each input into byte ranges of about this size (each ends after a line).")
@click.option("--encoding", default=None, metavar="CODEC", help="Encoding of the inputs [byte-order mark, else UTF-8].")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Tag LOC where P(location) >= this [the model's]; binary models only.")
def tag(inputs, out_dir, model_dir, fmt, workers, scheduler, partition_mb, encoding, threshold) -> None:
    """Tag every line of INPUT files or globs into --out DIR, one part file per partition."""
    _blas_one_thread()
    from .corpus_tag import run
    from .files import Signalled

    err = sys.stderr
    tty = err.isatty()

    def progress(line: str) -> None:
        err.write(line if tty else line + "\n")
        err.flush()

    try:
        summary = run(inputs, out_dir, model=model_dir, fmt=fmt, threshold=threshold, encoding=encoding,
                      partition_bytes=int(partition_mb * 2**20), workers=workers, scheduler=scheduler,
                      progress=progress, tty=tty)
    except Signalled as e:
        e.done = f"the finished parts stay in {out_dir}; run the same command again to continue"
        raise
    rate = f", {summary.tagged_tokens / summary.seconds / 1e3:,.0f}k tokens/s" if summary.tagged_tokens else ""
    click.echo(f"{summary.parts:,} parts ({summary.skipped:,} finished before), {summary.lines:,} lines, "
               f"{summary.tokens:,} tokens: {summary.seconds:.1f} s{rate} -> {os.path.join(out_dir, 'manifest.json')}")


# --- gradcheck -----------------------------------------------------------------------


# model.ACTIVATIONS, model.BINARY_LOSSES and model.TASKS, spelled out so that `--help` imports
# no numpy (tests/test_layout.py checks that they are the same names)
ACTIVATION_NAMES = ("sigmoid", "tanh", "relu")
BINARY_LOSS_NAMES = ("bce", "squared")
TASK_NAMES = ("binary", "multiclass")
OUTPUT_NAMES = ("window", "sentence")  # config.OUTPUTS


@cli.command()
@click.option("--activation", type=click.Choice([*ACTIVATION_NAMES, "all"]), default="all", show_default=True)
@click.option("--loss", type=click.Choice([*BINARY_LOSS_NAMES, "all"]), default="all", show_default=True)
@click.option("--task", type=click.Choice(TASK_NAMES), default="binary", show_default=True)
@click.option("--output", type=click.Choice(OUTPUT_NAMES), default="window", show_default=True,
              help="window: the window model; sentence: tag scores + transitions (loss sll; --loss does not apply).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
def gradcheck(activation, loss, task, output, fmt, seed) -> None:
    """Check every hand-derived gradient against centred differences (exit 1 if any rel. error > 1e-6)."""
    from .errors import ConfigError
    from .gradcheck import format_text, run_gradcheck

    if task == "multiclass" and loss != "all":
        raise ConfigError(f"--loss {loss} applies to --task binary; the multiclass model has one loss, softmax "
                          f"cross-entropy, which it always checks (drop --loss)")
    acts = ACTIVATION_NAMES if activation == "all" else (activation,)
    losses = BINARY_LOSS_NAMES if loss == "all" else (loss,)
    result = run_gradcheck(activations=acts, losses=losses, task=task, seed=seed, output=output)
    click.echo(json.dumps(result, indent=1) if fmt == "json" else format_text(result))
    sys.exit(0 if result["passed"] else 1)


# --- data ------------------------------------------------------------------------------


@cli.group()
def data() -> None:
    """Inspect labelled data files."""


@data.command("stats")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--scheme", default="auto", show_default=True, help="iob1, iob2, io, bioes or auto.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Reject tag sequences the scheme forbids (e.g. I- after O in iob2).")
def data_stats(files, scheme, fmt, strict) -> None:
    """Documents, sentences, tokens, and entities per type of each FILE."""
    from .conll import file_stats

    stats = [file_stats(f, scheme, strict) for f in files]
    if fmt == "json":
        click.echo(json.dumps({"files": stats}, indent=1))
        return
    for s in stats:
        click.echo(f"{s['path']}: {s['documents']:,} documents, {s['sentences']:,} sentences, {s['tokens']:,} tokens")
        for t in sorted(s["entities"]):
            click.echo(f"  {t:<8} {s['entities'][t]:>7,} entities {s['entity_tokens'][t]:>7,} tokens")


# --- explain ---------------------------------------------------------------------------


@cli.command()
@click.argument("text")
@click.option("--word", default=None, help="The word whose window to explain (or give --index).")
@click.option("--index", "index", type=int, default=None,
              help="The token to explain by its number, counting from 0 (as evaluate --errors numbers tokens).")
@click.option("--label", default="1", show_default=True,
              help="Gold label for the backward pass: 1 (LOC) or 0 for binary models; a class index "
                   "(1 = first entity class) or name such as PER for multiclass models.")
@click.option("--model", "model_dir", type=click.Path(), help="Model or run directory [runs/latest].")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def explain(text, word, index, label, model_dir, fmt) -> None:
    """Show the forward and backward pass of the model on one word's window."""
    from .explain import explain as run_explain, format_text
    from .tagger import Tagger

    tagger = Tagger.load(model_dir)
    result = run_explain(tagger.model, text, word, label, index=index)
    click.echo(json.dumps(result, indent=1) if fmt == "json" else format_text(result))


# --- export ----------------------------------------------------------------------------


@cli.command()
@click.option("--model", "model_dir", type=click.Path(), help="Model or run directory [$NER_WINDOW_MODEL or runs/latest].")
@click.option("--format", "fmt", default="onnx", show_default=True, help="Export format: onnx.")
@click.option("--out", required=True, type=click.Path(), help="The file to write, e.g. model.onnx.")
def export(model_dir, fmt, out) -> None:
    """Write the model for another runtime: model.onnx and model.vocab.json (how to build its inputs)."""
    from .export import export_model
    from .tagger import default_model_path

    for path in export_model(model_dir or default_model_path(), out, fmt):
        click.echo(f"wrote {path}")


# --- serve -----------------------------------------------------------------------------


@cli.command()
@click.option("--model", "model_dir", type=click.Path(), help="Model or run directory [$NER_WINDOW_MODEL or runs/latest].")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (127.0.0.1: this machine only).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes, each with its own copy of the model.")
@click.option("--access-log", is_flag=True, help="Log every request.")
def serve(model_dir, host, port, workers, access_log) -> None:
    """Serve the page at / and the JSON API (/v1/tag, /v1/explain, /v1/model) over HTTP."""
    _blas_one_thread()
    try:
        from .serve import run
    except ImportError as e:
        if e.name not in ("starlette", "uvicorn") and not (e.name or "").startswith(("starlette.", "uvicorn.")):
            raise
        raise NerWindowError(f"ner-window serve needs the 'serve' extra ({e.name} is not installed): "
                             f"pip install 'ner-window[serve]' (make installs it)") from None
    run(model_dir, host=host, port=port, workers=workers, access_log=access_log, log=click.echo)


def main() -> None:
    cli(prog_name="ner-window")


_ENDED: list[str] = []  # commands whose work is done and written, so the process may end at once


def console_main() -> None:
    """The ``ner-window`` program: ``main()``, then, after a successful ``predict``, the end of the
    process without the interpreter's teardown (os._exit once stdout and stderr are flushed).

    Freeing the model's ~100k objects and every module at exit cost ~38 ms of CPU, 12% of a
    cold ``predict`` (median of 15 interleaved runs).  By then predict has written and closed
    its output, and it starts no thread, child or temporary file that would need an exit
    handler.  Any other command, and any error, exits the ordinary way.  ``main()`` itself
    never does this (tests and other programs call it and carry on)."""
    try:
        main()
    except SystemExit as e:
        if _ENDED and e.code in (0, None):
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError):  # a closed or broken stream: let Python report it as usual
                raise e from None
            os._exit(0)
        raise


if __name__ == "__main__":
    console_main()
