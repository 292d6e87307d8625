"""``import minifw``: what it loads at once, and the names it loads on first use."""

import subprocess
import sys

import minifw as mf

HEAVY = ("minifw.gradcheck", "minifw.files", "minifw.modelfile", "minifw.testing", "hypothesis",
         "matplotlib", "tqdm", "zipfile")


def test_import_minifw_leaves_the_checker_files_and_plots_unloaded():
    # what importing minifw adds: a site's start-up may load some of HEAVY itself (certifi's
    # .pth hook, say, imports zipfile before any code of ours runs)
    code = ("import sys; before = set(sys.modules); import minifw; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                text=True).stdout.split())
    assert "minifw.layers" in loaded and "minifw.training" in loaded
    assert not loaded & set(HEAVY)


def test_the_lazy_names_are_the_modules_own_and_listed():
    import minifw.files
    import minifw.gradcheck
    import minifw.modelfile

    assert mf.check_grads is minifw.gradcheck.check_grads
    assert mf.GradCheckReport is minifw.gradcheck.GradCheckReport
    assert (mf.load, mf.save) == (minifw.files.load, minifw.files.save)
    assert mf.load_model is minifw.modelfile.load_model
    assert {"check_layer", "save_model", "testing"} <= set(dir(mf))
    assert set(mf.__all__) <= set(dir(mf))


def test_from_import_of_a_lazy_name_and_an_unknown_name():
    from minifw import assert_grads_close, check_layer  # noqa: F401  (PEP 562 from-import)

    try:
        mf.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_the_training_block_and_summary_keep_their_names_after_their_modules_load():
    # in a fresh interpreter, the modules imported by name first: importing a module binds
    # its name in the package, over a function or block of the same name loaded lazily
    code = ("import minifw.summary, minifw.training, minifw as mf; "
            "assert callable(mf.summary) and mf.training is mf.modes.training")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_lazy_modules_are_attributes_in_a_fresh_interpreter():
    # ``mf.gradcheck`` and the other modules loaded on first use, before anything imports them
    code = ("import minifw as mf; print(mf.gradcheck.check_grads is mf.check_grads, "
            "mf.files.save is mf.save, mf.modelfile.load_model is mf.load_model, "
            "mf.testing.__name__, mf.book.__name__)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    assert out == ["True", "True", "True", "minifw.testing", "minifw.book"]
