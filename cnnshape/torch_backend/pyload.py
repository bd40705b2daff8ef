"""``FILE.py:ATTR`` wherever a spec goes: run the user's file (this runs their code, as
torchinfo runs their forward), take ATTR (an ``nn.Module``, a class with a no-argument
constructor, or a function returning a model), construct it on the meta device where the
constructor allows (no weights allocated), recording the line of the user's file where
every module is constructed, and import it through torch.fx
(:mod:`cnnshape.torch_backend.fx_import`).

What cnnshape bounds: the file's size (the spec limit, ``limits.MAX_BYTES``), the module
nesting (``limits.MAX_DEPTH``); what it reports: an exception, ``sys.exit`` or
``os._exit`` in the user's code as a located :class:`UserCodeError` (exit 2, never the
code's own exit status), a model a spec cannot say as a located SpecError (exit 1).
"""

import os
import sys
from contextlib import contextmanager

from ..errors import Diagnostic, SpecError, SpecFileError, UserCodeError


class _Exit(BaseException):
    """os._exit called by the user's code (raised instead of ending the process)."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


@contextmanager
def _guarded(path: str):
    """The user's directory on sys.path, os._exit turned into an exception; restored after."""
    folder = os.path.dirname(os.path.abspath(path))
    old_exit, old_path = os._exit, list(sys.path)
    sys.path.insert(0, folder)

    def no_exit(code):
        raise _Exit(code)

    os._exit = no_exit
    try:
        yield
    finally:
        os._exit = old_exit
        sys.path[:] = old_path


def _user_failure(what: str, exc: BaseException) -> UserCodeError:
    from .fx_import import site_of_exception

    site = site_of_exception(exc)
    where = f"{site}: " if site else ""
    if isinstance(exc, SystemExit):
        why = f"called sys.exit({exc.code!r})"
    elif isinstance(exc, _Exit):
        why = f"called os._exit({exc.code!r})"
    else:
        text = str(exc).splitlines()[0][:300] if str(exc) else ""
        why = f"raised {type(exc).__name__}" + (f": {text}" if text else "")
    return UserCodeError(f"{where}{what} {why} (cnnshape runs the file to get the model)")


@contextmanager
def recording_sites(sites: dict):
    """While active, every nn.Module constructed records (in ``sites``, by id) the innermost
    line of the user's files that constructed it."""
    from torch import nn

    from .fx_import import Site, _first_column, is_user_file

    orig = nn.Module.__init__
    keep: list = []

    def init(self, *args, **kwargs):
        orig(self, *args, **kwargs)
        f = sys._getframe(1)
        while f is not None:
            if is_user_file(f.f_code.co_filename):
                name, line = f.f_code.co_filename, f.f_lineno
                sites.setdefault(id(self), Site(name, line, _first_column(name, line)))
                keep.append(self)  # ids stay unique while the table is in use
                break
            f = f.f_back

    nn.Module.__init__ = init
    try:
        yield keep
    finally:
        nn.Module.__init__ = orig


#: in-place initialisers whose meta kernels are Python decompositions: the first call imports
#: torch._dynamo (seconds); on meta tensors they only need to keep the shape
_META_SLOW = ("normal_", "erfinv_", "clamp_", "log_normal_", "exponential_", "cauchy_", "geometric_")


@contextmanager
def _cheap_meta_init():
    """While a model is constructed on the meta device: those initialisers do nothing on
    meta tensors (values do not exist there), everything else as usual."""
    import torch

    saved = {name: getattr(torch.Tensor, name) for name in _META_SLOW}

    def skip(orig):
        def method(self, *args, **kwargs):
            return self if self.is_meta else orig(self, *args, **kwargs)
        return method

    for name, orig in saved.items():
        setattr(torch.Tensor, name, skip(orig))
    try:
        yield
    finally:
        for name, orig in saved.items():
            setattr(torch.Tensor, name, orig)


def _read_source(path: str) -> str:
    from ..yaml_io import read_bytes

    data = read_bytes(path)  # the spec size limit, no blocking on pipes; SpecFileError
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def load_model(target: str, sites: dict, devices=("meta", "cpu")):
    """(model, path, source text) of ``FILE.py:ATTR``; UserCodeError when the file cannot
    give one."""
    import torch

    from .torch_items import instantiate

    path, _, attr = target.rpartition(":")
    text = _read_source(path)
    try:
        code = compile(text, path, "exec")
    except SyntaxError as exc:
        raise UserCodeError(f"{path}:{exc.lineno or 1}:{exc.offset or 1}: invalid Python: {exc.msg}") from None
    except ValueError as exc:  # NUL bytes
        raise UserCodeError(f"{path}: invalid Python: {exc}") from None
    errors = []
    for device in devices:  # meta first: a large model costs nothing
        namespace = {"__name__": "__cnnshape_import__", "__file__": os.path.abspath(path)}
        try:
            cheap = _cheap_meta_init() if device == "meta" else _nothing()
            with _guarded(path), recording_sites(sites), torch.device(device), cheap:
                exec(code, namespace)  # noqa: S102 - running the user's model file is what import means
                if attr not in namespace:
                    raise UserCodeError(f"{path}: has no attribute {attr!r} (names defined: "
                                        f"{_names(namespace)})")
                model = instantiate(namespace[attr], f"{path}:{attr}", raw=True)
            return model, path, text
        except UserCodeError:
            raise
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - the user's code raised or exited: report it, located
            errors.append(_user_failure(f"{path}:{attr}", exc))
            if isinstance(exc, (SystemExit, _Exit)):
                break
        sites.clear()
    raise errors[-1]


@contextmanager
def _nothing():
    yield


def _names(namespace) -> str:
    from torch import nn

    found = [k for k, v in namespace.items() if not k.startswith("_") and
             (isinstance(v, nn.Module) or (isinstance(v, type) and issubclass(v, nn.Module)
                                           and v.__module__ == "__cnnshape_import__"))]
    return ", ".join(found[:10]) or "no modules"


#: ``PACKAGE:MODEL`` sources: how each package builds a model by name
PACKAGES = ("torchvision", "timm")


def _import_package(package: str):
    """``torchvision`` / ``timm``, imported. A torchvision whose compiled ops do not match the
    installed torch (``operator torchvision::nms does not exist``) still has importable model
    definitions: its op registrations are then left out (only the models are used here)."""
    import importlib
    import types

    try:
        importlib.import_module("torchvision")
    except ImportError:
        if package == "torchvision":
            raise
    except RuntimeError:  # the compiled ops of another torch build: import the model code only
        for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[mod]
        for mod in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
            sys.modules.setdefault(mod, types.ModuleType(mod))
    return importlib.import_module(package)


def package_model(package: str, name: str):
    """The model ``name`` of ``package`` (``torchvision.models.get_model`` / ``timm.create_model``,
    random weights), built on the meta device; UserCodeError when the package or the name is
    not there."""
    import torch

    try:
        lib = _import_package(package)
    except ImportError as exc:
        raise UserCodeError(f"{package}:{name}: {package} is not installed ({exc}); pip install {package}") from None
    try:
        with torch.device("meta"), _cheap_meta_init():
            if package == "torchvision":
                return lib.models.get_model(name)
            return lib.create_model(name, pretrained=False)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - the package refused the name or failed to build it: say so
        import difflib

        known = lib.models.list_models() if package == "torchvision" else lib.list_models()
        near = ", ".join(difflib.get_close_matches(name, known, n=6, cutoff=0.6))
        raise UserCodeError(f"{package}:{name}: {package} cannot build it ({type(exc).__name__}: {exc})"
                            + (f"; names it knows include {near}" if near else "")) from None


def weighted_model(target: str, pretrained: bool = False):
    """The model ``target`` names with real weights, on the CPU: the user's file built there,
    or the package's model (``pretrained``: with the weights the package's own loader fetches,
    torchvision's ``weights="DEFAULT"``, timm's ``pretrained=True``). UserCodeError (exit 2)
    when it cannot be had."""
    package, _, name = target.rpartition(":")
    if package not in PACKAGES:
        if pretrained:
            raise UserCodeError(f"{target}: --pretrained takes the published weights of torchvision:NAME or "
                                "timm:NAME; a file's model has the weights its constructor gives it")
        return load_model(target, {}, devices=("cpu",))[0]
    try:
        lib = _import_package(package)
        if package == "torchvision":
            return lib.models.get_model(name, weights="DEFAULT" if pretrained else None)
        return lib.create_model(name, pretrained=pretrained)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - the package's loader failed (offline, no such weights): say so
        what = "fetch its pretrained weights" if pretrained else "build it"
        raise UserCodeError(f"{target}: {package} could not {what} ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def load_python(target: str, input, batch: int | None = None):
    """The spec of the model ``FILE.py:ATTR`` on ``input`` (one sample), not yet analysed
    (the analysis reports layers built for another shape at the user's lines). Raises
    UserCodeError / SpecFileError (exit 2) and SpecError (exit 1, located)."""
    from ..spec import Source
    from .fx_import import ImportRefused
    from .importer import import_spec

    if input is None:
        raise SpecFileError(f"{target}: a Python model needs --input C,H,W (one sample's shape)")
    sites: dict = {}
    package, _, model_name = target.rpartition(":")
    if package in PACKAGES:
        model, path, source = package_model(package, model_name), target, None
    else:
        model, path, text = load_model(target, sites)
        source = Source(path, text)
    try:
        return import_spec(model, input, batch=batch or 1, sites=sites, source=source)
    except ImportRefused as exc:
        raise located(exc, path) from None
    except RecursionError:
        raise SpecError([Diagnostic(f"{target}: the model is nested too deeply to import", "flatten the nesting")],
                        path) from None


def located(exc, path: str) -> SpecError:
    site = exc.site
    d = Diagnostic(exc.message, exc.hint, line=site.line if site else None, column=site.column if site else None)
    return SpecError([d], site.path if site else path)
