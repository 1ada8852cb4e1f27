"""Which registry's credentials a pull or push uses, and whether the team may use it.

Job parameters carry the registry's id only; the handler looks the registry up
again, re-checks that it is granted to the job's team, and hands its credentials to
the engine inside the job (`auth_config`). They are never written anywhere else.
"""

from containers.policy import PolicyError
from registries.models import Registry
from registries.services import auth_config_for, match_registry, registries_for


def registry_for_reference(user, team, reference):
    """The configured registry `reference` names, if any; PolicyError when it names one
    the team has not been granted. None: an unconfigured registry, used anonymously."""
    registry = match_registry(str(reference), Registry.objects.all())
    if registry is None:
        return None
    if not registries_for(user, team).filter(pk=registry.pk).exists():
        raise PolicyError(
            "registry",
            f"Registry {registry.name} is not granted to team {team.name} "
            "(or your role there cannot use it).",
        )
    return registry


def chosen_registry(user, team, registry_id):
    """A registry picked in a form: it must be one the team may use."""
    registry = registries_for(user, team).filter(pk=registry_id).first()
    if registry is None:
        raise PolicyError(
            "registry", f"That registry is not granted to team {team.name} (or does not exist)."
        )
    return registry


def auth_for_job(job_user, team, reference, registry_id):
    """(registry, auth_config) for the job's engine call; re-checks the grant now."""
    registry = registry_for_reference(job_user, team, reference)
    if registry_id and (registry is None or registry.pk != registry_id):
        raise PolicyError("registry", "The registry chosen for this job changed; queue it again.")
    return registry, (auth_config_for(registry) if registry is not None else None)
