"""The compose policy: what a compose file may ask of a host, for non-admins.

Two passes. `check_files` reads the raw YAML before Compose touches it: Compose
reads files on the machine that runs it (env_file, label_file, extends, include,
secrets/configs `file:`, build contexts), so every such path must stay inside
the stack's own directory (symlinks resolved) — and included or extended files
are checked the same way. `check_config` reads Compose's normalised model
(`docker-compose config --format json`) and checks every service with the
container form's own create policy (containers.policy.PRIVILEGED_FIELDS, the
label and image rules) and the team's volumes and networks (resources.services),
plus the few keys only compose has (provider, use_api_socket, gpus, …).
Refusals name the service and the key. Dashboard admins may deploy anything.
"""

import os
import re

import yaml
from django.utils.datastructures import MultiValueDict

from containers import policy as container_policy
from resources import services as resource_services

MAX_COMPOSE_BYTES = 256 * 1024
MAX_INCLUDE_DEPTH = 8
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Variables that steer Compose or the Docker client themselves (DOCKER_HOST would send
# the deploy to another engine): never taken from a stack's env file.
RESERVED_ENV_PREFIXES = ("DOCKER_", "COMPOSE_", "BUILDKIT_", "BUILDX_")


class StackPolicyError(ValueError):
    """A refusal: `service` and `key` say where, `message` says why."""

    def __init__(self, message, service="", key=""):
        where = ""
        if service and key:
            where = f"Service {service!r}, key {key!r}: "
        elif key:
            where = f"Key {key!r}: "
        super().__init__(where + message)
        self.service = service
        self.key = key
        self.message = where + message


# ---------------------------------------------------------------- parsing


def load_yaml(text):
    """The compose file as a mapping, or a StackPolicyError saying why not."""
    if len(text.encode()) > MAX_COMPOSE_BYTES:
        raise StackPolicyError(f"The compose file is larger than {MAX_COMPOSE_BYTES // 1024} KiB.")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "it cannot be parsed"
        raise StackPolicyError(f"The compose file is not valid YAML{where}: {problem}.") from None
    if not isinstance(data, dict):
        raise StackPolicyError("The compose file must be a mapping with a 'services' key.")
    services = data.get("services")
    if not isinstance(services, dict) or not services:
        if not data.get("include"):
            raise StackPolicyError("The compose file has no services.")
    return data


def parse_env(text):
    """The stack's env file: KEY=value lines; reserved keys refused for everyone."""
    env = {}
    for number, raw in enumerate((text or "").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not ENV_KEY_RE.match(key):
            raise StackPolicyError(f"Env file line {number} is not KEY=value.", key="env")
        if key.upper().startswith(RESERVED_ENV_PREFIXES):
            raise StackPolicyError(
                f"Env file line {number}: {key} would change how Docker Compose itself runs; "
                "variables starting with DOCKER_, COMPOSE_, BUILDKIT_ or BUILDX_ are not allowed.",
                key="env",
            )
        env[key] = value
    return env


# ---------------------------------------------------------------- pass 1: files


def _inside(path, base_dir, root, service, key):
    """`path` (relative to `base_dir`) resolves, symlinks followed, inside `root`."""
    if not isinstance(path, str) or not path.strip():
        raise StackPolicyError("must be a path.", service, key)
    if "$" in path:
        raise StackPolicyError(
            f"{path!r}: variables are not allowed in file paths for your role.", service, key
        )
    if "://" in path or path.startswith(("git@", "github.com/")):
        raise StackPolicyError(
            f"{path!r}: only files inside the stack's own directory may be used.", service, key
        )
    full = os.path.realpath(os.path.join(base_dir, os.path.expanduser(path)))
    real_root = os.path.realpath(root)
    if full != real_root and not full.startswith(real_root + os.sep):
        raise StackPolicyError(f"{path!r} points outside the stack's own directory.", service, key)
    return full


def _paths(value, field="path"):
    """A compose file reference in its short (str) or long ({path: …}) form, or a list."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, dict):
            item = item.get(field)
        if item is not None:
            out.append(item)
    return out


def check_files(data, base_dir, root, depth=0):
    """Pass 1 (non-admins): every file Compose would read stays inside `root`."""
    if depth > MAX_INCLUDE_DEPTH:
        raise StackPolicyError("include/extends nest too deep.", key="include")
    for entry in _paths(data.get("include") or [], "path"):
        for path in entry if isinstance(entry, list) else [entry]:
            full = _inside(path, base_dir, root, "", "include")
            _check_file(full, root, depth, "", "include")
    for entry in data.get("include") or []:
        if isinstance(entry, dict):
            for extra in ("env_file", "project_directory"):
                for path in _paths(entry.get(extra) or []):
                    _inside(path, base_dir, root, "", f"include.{extra}")
    for kind in ("secrets", "configs"):
        for name, spec in (data.get(kind) or {}).items():
            if isinstance(spec, dict) and spec.get("file") is not None:
                _inside(spec["file"], base_dir, root, "", f"{kind}.{name}.file")
    for name, svc in (data.get("services") or {}).items():
        if not isinstance(svc, dict):
            continue
        for key in ("env_file", "label_file"):
            for path in _paths(svc.get(key) or []):
                _inside(path, base_dir, root, name, key)
        ext = svc.get("extends")
        if isinstance(ext, dict) and ext.get("file") is not None:
            full = _inside(ext["file"], base_dir, root, name, "extends")
            _check_file(full, root, depth, name, "extends")
        build = svc.get("build")
        if build is not None:
            _check_build_paths(name, build, base_dir, root)


def _check_file(full, root, depth, service, key):
    try:
        with open(full, encoding="utf-8") as fh:
            text = fh.read(MAX_COMPOSE_BYTES + 1)
    except OSError:
        raise StackPolicyError("the file it names cannot be read.", service, key) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise StackPolicyError("the file it names is not valid YAML.", service, key) from None
    if isinstance(data, dict):
        check_files(data, os.path.dirname(full), root, depth + 1)


def _check_build_paths(name, build, base_dir, root):
    if isinstance(build, str):
        _inside(build, base_dir, root, name, "build.context")
        return
    if not isinstance(build, dict):
        return
    context = _inside(build.get("context") or ".", base_dir, root, name, "build.context")
    dockerfile = build.get("dockerfile")
    if isinstance(dockerfile, str):
        _inside(dockerfile, context, root, name, "build.dockerfile")
    for ctx_name, path in (build.get("additional_contexts") or {}).items():
        _inside(path, base_dir, root, name, f"build.additional_contexts.{ctx_name}")


# ---------------------------------------------------------------- pass 2: the model


_NAMESPACE_KEYS = {
    # compose key → the create policy's field of the same meaning
    "network_mode": "network_mode",
    "pid": "pid_mode",
    "ipc": "ipc_mode",
    "uts": "uts_mode",
    "userns_mode": "userns_mode",
}
_PASSTHROUGH_KEYS = ("privileged", "cap_add", "devices", "security_opt", "sysctls")
_PASSTHROUGH_KEYS += ("cgroup_parent", "runtime")
# Keys only compose has, with why a non-admin may not use them.
_COMPOSE_ONLY = {
    "provider": "a provider service runs a program on the machine that runs Compose",
    "use_api_socket": "it hands the container the Docker API socket",
    "gpus": "it gives the container host devices (GPUs)",
    "device_cgroup_rules": "it gives the container host devices",
    "external_links": "it links the container to containers outside the stack",
    "credential_spec": "it reads credentials from the host",
}


def _refuse(service, key, field, value):
    """Ask the container form's policy about one option; re-raise naming the service."""
    data = MultiValueDict(
        {field: [str(v) for v in (value if isinstance(value, list) else [value])]}
    )
    try:
        container_policy.refuse_privileged(data)
    except container_policy.PolicyError as exc:
        raise StackPolicyError(exc.message, service, key) from None


def _namespace_ok(value, services):
    """private/shareable/none, or another service of the same stack."""
    value = str(value or "")
    if value in ("", "private", "shareable", "none", "bridge", "default"):
        return True
    if value.startswith("service:"):
        return value.split(":", 1)[1] in services
    return False


def check_config(config, user, host, team, root, project):
    """Pass 2 (non-admins): the normalised model against the create policy.

    Returns (volume names, network ids) the stack will use, for the caller's record.
    """
    services = config.get("services") or {}
    if not services:
        raise StackPolicyError("The compose file has no services.")
    if config.get("models"):
        raise StackPolicyError("model runners are not allowed for your role.", key="models")
    declared_volumes = config.get("volumes") or {}
    declared_networks = config.get("networks") or {}
    for name, svc in services.items():
        _check_service(name, svc or {}, services, root)
    volume_names = _check_volumes(user, host, team, declared_volumes, project)
    _check_networks(user, host, team, declared_networks, project)
    for kind in ("secrets", "configs"):
        for name, spec in (config.get(kind) or {}).items():
            spec = spec or {}
            if spec.get("file"):
                _inside(spec["file"], root, root, "", f"{kind}.{name}.file")
            if spec.get("external"):
                raise StackPolicyError("external secrets are not allowed.", key=f"{kind}.{name}")
    return volume_names


def _check_service(name, svc, services, root):
    for key, why in _COMPOSE_ONLY.items():
        if svc.get(key):
            raise StackPolicyError(f"not allowed for your role: {why}.", name, key)
    for key in _PASSTHROUGH_KEYS:
        if svc.get(key):
            _refuse(name, key, key, svc[key])
    for key, field in _NAMESPACE_KEYS.items():
        if svc.get(key) and not _namespace_ok(svc[key], services):
            _refuse(name, key, field, svc[key])
    if svc.get("cgroup") == "host":
        raise StackPolicyError("the host's cgroup namespace is not allowed.", name, "cgroup")
    for ref in svc.get("volumes_from") or []:
        source = str(ref).split(":")[0] if not str(ref).startswith("container:") else ""
        if source not in services:
            _refuse(name, "volumes_from", "volumes_from", ref)
    reservations = ((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {}
    if reservations.get("devices") or reservations.get("generic_resources"):
        _refuse(name, "deploy.resources.reservations.devices", "devices", "reserved")
    for hook_kind in ("post_start", "pre_stop"):
        for hook in svc.get(hook_kind) or []:
            if (hook or {}).get("privileged"):
                _refuse(name, f"{hook_kind}.privileged", "privileged", "true")
    if svc.get("image"):
        try:
            container_policy.parse_image(svc["image"])
        except container_policy.PolicyError as exc:
            raise StackPolicyError(exc.message, name, "image") from None
    labels = svc.get("labels") or {}
    if isinstance(labels, dict):
        try:
            container_policy.parse_labels("\n".join(f"{k}=" for k in labels))
        except container_policy.PolicyError as exc:
            raise StackPolicyError(exc.message, name, "labels") from None
    for mount in svc.get("volumes") or []:
        _check_mount(name, mount)
    for path in _paths(svc.get("env_file") or []):
        _inside(path, root, root, name, "env_file")
    if svc.get("build") is not None:
        _check_build(name, svc["build"], root)


def _check_mount(name, mount):
    kind = mount.get("type")
    source = str(mount.get("source") or "")
    target = str(mount.get("target") or "")
    if "docker.sock" in source or "docker.sock" in target:
        raise StackPolicyError("Mounting the Docker socket is not allowed.", name, "volumes")
    if kind == "bind":
        _refuse(name, "volumes", "binds", source)
    if kind not in ("volume", "tmpfs", "image"):
        raise StackPolicyError(f"mounts of type {kind!r} are not allowed.", name, "volumes")


def _check_build(name, build, root):
    context = build.get("context") or "."
    if "://" in context or context.startswith("git@"):
        raise StackPolicyError(
            "only a directory inside the stack may be a build context.", name, "build.context"
        )
    context = _inside(context, root, root, name, "build.context")
    if build.get("dockerfile"):
        _inside(build["dockerfile"], context, root, name, "build.dockerfile")
    for ctx_name, path in (build.get("additional_contexts") or {}).items():
        _inside(path, root, root, name, f"build.additional_contexts.{ctx_name}")
    if build.get("privileged"):
        _refuse(name, "build.privileged", "privileged", "true")
    if build.get("network") == "host":
        _refuse(name, "build.network", "network_mode", "host")
    for key in ("ssh", "entitlements", "cache_to"):
        if build.get(key):
            raise StackPolicyError("not allowed for your role.", name, f"build.{key}")
    for source in build.get("cache_from") or []:
        if "type=local" in str(source):
            raise StackPolicyError("a local build cache is not allowed.", name, "build.cache_from")


def _check_volumes(user, host, team, declared, project):
    names = []
    for key, spec in declared.items():
        spec = spec or {}
        if spec.get("driver_opts"):
            _refuse("", f"volumes.{key}.driver_opts", "volume_driver_opts", "set")
        if spec.get("driver") not in (None, "", "local"):
            raise StackPolicyError(
                f"volume driver {spec['driver']!r} is not allowed.", key=f"volumes.{key}.driver"
            )
        names.append(spec.get("name") or f"{project}_{key}")
    try:
        resource_services.check_volumes(user, host, team, names)
    except container_policy.PolicyError as exc:
        raise StackPolicyError(exc.message, key="volumes") from None
    return names


def _check_networks(user, host, team, declared, project):
    for key, spec in declared.items():
        spec = spec or {}
        if spec.get("driver") not in (None, "", "bridge"):
            raise StackPolicyError(
                f"network driver {spec['driver']!r} is not allowed.", key=f"networks.{key}.driver"
            )
        if spec.get("driver_opts"):
            raise StackPolicyError("driver options are not allowed.", key=f"networks.{key}")
        name = spec.get("name") or f"{project}_{key}"
        if spec.get("external") or not name.startswith(f"{project}_"):
            try:
                resource_services.resolve_network(user, host, team, name)
            except container_policy.PolicyError as exc:
                raise StackPolicyError(exc.message, key=f"networks.{key}") from None
