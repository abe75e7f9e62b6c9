"""A backbone edited after its sites were found: read by the objects the network hooked, or refused by name.

A NeuroView-CNN hooks module *objects*, and its sites keep the names those objects had when they were found. An edit
of the module tree since (``nn.Sequential.insert`` or ``del``, a module put in another's place, a new block) can move
those names onto other modules, or add an activation whose units the decision would leave out: the pass went on
without a word, while whatever looked a site's module up by its name (the breakpoints a state dict records, the
gallery's windows, an ablation) read another module. Here:

- :func:`take` keeps a fingerprint of the backbone's module tree (its modules and each one's children, by object)
  when the sites are found; :func:`require_unedited` compares it at each pass (one tuple of the children, compared
  by identity) and, where the tree changed, looks at what changed (:func:`require_same_modules`): a site module
  gone, or a site's name that now names another module, is refused with the fix; a new activation module (default
  sites) is watched, and refused by name by the first pass that runs it before the stop (:func:`added`: its units
  would be left out; one in a new head after the stop never runs); any other edit (a new head, a wrapper that keeps
  the names, ``torch.compile`` or ``nn.DataParallel`` around the backbone in place) goes through, and the
  fingerprint is taken again;
- :func:`found_on_built`: the discovery pass's sites on the tree that pass leaves (a module a forward builds on its
  first call is no edit: it is found);
- :func:`site_module`: the module object ``net`` hooked for a site (an Ensemble's, its member's), for the tools
  that hook a site themselves; an edited member's error names it (:func:`in_member`, :func:`require_members_unedited`);
- :func:`require_called`: a first batch on which no module to hook ran, worded by what was given.

Imports only torch and the core modules below it.
"""

from __future__ import annotations


import torch
from torch import nn

from .activations import is_activation
from .hooks import PathChanged, install

__all__ = ["take", "unchanged", "require_unedited", "require_same_modules", "added", "site_module", "require_called",
           "found_on_built", "require_members_unedited", "in_member", "each_member"]

_REWRAP = ("wrap the edited model again (new = nv.wrap(net.unwrap(), num_classes, ...) with the same settings; "
           "new.load_state_dict(net.state_dict()) keeps the trained head where the units agree), or edit a model "
           "before wrapping it")


def _children(modules: tuple) -> tuple:
    # read anew each time (``del seq[i]`` puts a new dict in place); compared by identity first: a few us a pass for a
    # ResNet's 150 modules, against milliseconds of its forward
    return tuple(c for m in modules for c in m._modules.values())


def take(net: nn.Module) -> None:
    """Keep the fingerprint of ``net``'s backbone as it is now: the backbone, its modules, and their children."""
    backbone = net._modules.get("backbone")
    modules = tuple(backbone.modules())
    net.__dict__["_tree"] = (backbone, modules, _children(modules))


def found_on_built(net: nn.Module, find):
    """``find()`` (the sites of ``net``'s discovery pass) on the module tree that pass leaves, its fingerprint taken then:
    a forward that builds modules on its first call (a lazy build) is looked at again, its targets found on the model it
    built (its first forward's new ReLU was refused at the next pass as added after the sites were found, review R4
    finding 3). A backbone that builds anew at every pass is refused at the next one, as an edit."""
    from .targets import find_targets

    for again in (False, True):  # (no catch_warnings here: its filters reset Python's once-a-place record of every
        take(net)                #  warning, so a user's own warning came back at each stage of a loop)
        got = find()
        if again or unchanged(net) or "_layers" not in net.__dict__:
            break
        net._targets, net.left_out = find_targets(net.backbone, net._layers)
    return got


def unchanged(net: nn.Module) -> bool:
    """Whether ``net``'s backbone is the module tree :func:`take` last saw (the same objects at the same places)."""
    tree = net.__dict__.get("_tree")
    return tree is not None and tree[0] is net._modules.get("backbone") and _children(tree[1]) == tree[2]


def require_unedited(net: nn.Module) -> None:
    """At a pass of ``net`` (sites found): a clear error where its backbone was edited since in a way its sites cannot
    be read through (:func:`require_same_modules`); other edits are taken in. Not while compiled or exported (a
    graph guards on the modules it traced)."""
    if net.__dict__.get("sites") is None or torch.compiler.is_compiling() or unchanged(net) or torch.compiler.is_exporting():
        return
    new = require_same_modules(net)
    if new:  # watched from now on (neuroview.core.paths): a pass that runs one before its stop is refused by name
        net.__dict__.setdefault("_added", {}).update((m, n) for n, m in new)
        if net.__dict__.get("_installed") and isinstance(net.__dict__.get("_watch"), dict):
            net._watch.update((m, (n, ())) for n, m in new)
            install(net, [(m, pre) for _, m in new for pre in (True, False)])
    take(net)


def _at(backbone: nn.Module, name: str) -> nn.Module | None:
    """The module ``name`` reaches now, through the wrappers that pass attributes on (``torch.compile``, FSDP)."""
    try:
        return backbone.get_submodule(name)
    except AttributeError:
        return None


def require_same_modules(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """A clear error where a site's module was replaced after the sites were found (``backbone[3] = nn.GELU()``: its
    hooks are on the old object, so the new one is never read, which was blamed on the data), or where a site's name
    now names another module (a module inserted or deleted before it: its units would be shown, ablated and saved
    under another module's name). Else ``(name, module)`` of each activation module added since :func:`take` (default
    sites: where it runs before the stop its units would be left out, :func:`added`)."""
    backbone = net.backbone
    called = {s.module for s in net.sites} | {m for m, _ in net.not_sites}
    where: dict[int, str] = {}
    for n, m in backbone.named_modules():
        where.setdefault(id(m), n)
    gone, moved = [], []
    for name, m, _ in net._targets:
        now = _at(backbone, name) if name in called else m
        if now is m:
            continue
        if id(m) not in where:
            gone.append(name)
        elif now is not None:  # (a name reached by nothing now: the object moved under a wrapper, the names kept)
            moved.append(f"site {name!r} ({type(m).__name__}) is now at {where[id(m)]!r}, and {name!r} now names the "
                         f"{type(now).__name__}")
    if gone:
        raise PathChanged(
            f"backbone: the modules {gone} were replaced after the sites were found (the hooks that read their codes are "
            f"on the old objects, so the new ones are not read); {_REWRAP}")
    tree = net.__dict__.get("_tree")
    known = {id(m) for m in tree[1]} if tree is not None else where.keys()
    new = [] if net.__dict__.get("_named") else [
        (n, m) for n, m in backbone.named_modules() if id(m) not in known and is_activation(m)]
    if moved:
        said = [f"{n!r} ({type(m).__name__}) was added" for n, m in new] + moved
        raise PathChanged(f"backbone: its modules were edited after the sites were found: {'; '.join(said)}. The network "
                          "reads the objects it hooked then, so the sites' names would name other modules (in "
                          f"explanations, galleries, ablations and saved files); {_REWRAP}")
    return new


def added(net: nn.Module, name: str, module: nn.Module) -> PathChanged:
    """The error of a pass that runs ``module``, an activation added to ``net``'s backbone since its sites were found
    (:func:`require_unedited` watches it), before the point where the pass stops."""
    stop = net.__dict__.get("_stop")
    became = (net.__dict__.get("_became") or {}).get(module)  # of a class registered since (core.recorder)
    return PathChanged(became or f"backbone: its modules were edited after the sites were found: {name!r} ({type(module).__name__}) "
                       f"was added, and runs before the pass stops{f' (at {stop!r})' if stop else ''}, so its units would "
                       f"be left out of the decision; {_REWRAP}")


def site_module(net: nn.Module, site) -> nn.Module:
    """The module object ``net`` hooked for ``site`` (one of ``net.sites``; an Ensemble's ``members.<m>.<site>``: its
    member's), where the backbone was not edited since in a way that needs a new wrap (:func:`require_unedited`).
    Looked up by object: a name may since name another module, or none under a wrapper put around the backbone."""
    members, name, m = getattr(net, "members", None), site.module, None
    if members is not None and name.startswith("members."):
        _, m, _, name = name.split(".", 3)  # members.<m>.backbone.<module>
        net = members[int(m)]
    try:
        require_unedited(net)
    except PathChanged as e:
        if m is None:
            raise
        raise in_member(e, int(m)) from None
    hooked = {n: m for n, m, _ in net._targets}
    if name not in hooked:
        raise ValueError(f"site: {site.name!r} reads the module {name!r}, which the network did not hook (it hooked "
                         f"{sorted(hooked)}): pass a site of net.sites")
    return hooked[name]


def in_member(err: PathChanged, m: int) -> PathChanged:
    """``err`` (of an edited backbone) said of member ``m`` of an Ensemble: ``members.<m>.backbone: ...``, its advice
    on ``ens.members[m]`` (it said ``backbone:`` and ``net``, review R4 finding 4)."""
    said = str(err)
    said = said.replace("net.unwrap()", f"ens.members[{m}].unwrap()").replace("net.state_dict()",
                                                                           f"ens.members[{m}].state_dict()")
    return PathChanged(f"members.{m}.{said}" + ("; then build the Ensemble again with the new member in its place"
                                                 if f"ens.members[{m}].unwrap()" in said else ""))


def each_member(members, call) -> list:
    """``[call(i, member) ...]`` over an Ensemble's ``members``, a PathChanged of member ``i``'s own pass (an activation
    added, or one whose class was registered since) naming it (:func:`in_member`; it said ``backbone:`` and
    ``net.unwrap()``, review R4 finding 4)."""
    out = []
    for i, member in enumerate(members):
        try:
            out.append(call(i, member))
        except PathChanged as e:
            raise in_member(e, i) from None
    return out


def require_members_unedited(net: nn.Module) -> None:
    """:func:`require_unedited` of each member of an Ensemble ``net`` (a no-op without members), its error naming the
    member (:func:`in_member`)."""
    for m, member in enumerate(getattr(net, "members", None) or ()):
        try:
            require_unedited(member)
        except PathChanged as e:
            raise in_member(e, m) from None


def require_called(targets, sites: list, not_sites: dict, named: bool, backbone: nn.Module | None = None) -> None:
    """Refuse a batch on which no target module ran, or (``named``: ``layers=[...]``) one a named module missed; the
    error says what was given (the modules of ``layers=[...]``, or the backbone's activation modules)."""
    called = {s.module for s in sites} | {m for m, _ in not_sites}
    names = [n for n, _, _ in targets]
    if not sites and named:
        raise ValueError(f"layers: none of the modules {names} was called in the forward pass")
    if not sites:
        here = {id(m) for m in backbone.modules()} if backbone is not None else None
        if here is not None and not any(id(m) in here for _, m, _ in targets):
            raise ValueError(f"backbone: its activation modules {names}, found when it was wrapped, are no longer in it "
                             "(the backbone was replaced or edited after nv.wrap); wrap the edited model again")
        raise ValueError(f"backbone: none of its activation modules {names} was called in the forward pass on this "
                         "batch (does its forward call activation functions, F.relu, instead?); call them in its forward "
                         "(nn.ReLU() modules), or pass layers=[...] naming the modules whose outputs to quantize")
    missed = [n for n in names if n not in called]
    if named and missed:
        raise ValueError(f"layers: {missed} were not called in the forward pass on this batch, which finds the sites "
                         f"in eval mode (a module that runs only while training, as an auxiliary head's, cannot be a "
                         f"site: leave it out); the sites found are {[s.name for s in sites]}")
