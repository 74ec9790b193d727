"""Run every endpoint's provider check (`Provider.check`) before acting: what the daemon asks at
start, and what a config check asks. Errors are setups that cannot work (the daemon refuses to
start on them, naming the fix); warnings are printed; a resource that cannot be read is a
warning too, as is a provider that cannot be built (the daemon starts and the endpoint's own
applies report the fault: fail warm)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from . import registry
from .base import EndpointRef, Provider, ProviderError


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_endpoints(endpoints: Iterable[tuple[dict[str, Any], EndpointRef]]) -> CheckReport:
    """`endpoints`: (raw provider table, endpoint bounds) pairs, as configured."""
    report = CheckReport()
    for raw, ref in endpoints:
        where = f"endpoint {ref.name} ({raw.get('kind')})"
        if registry.load_class(raw["kind"]).check is Provider.check:
            continue  # nothing to look at: not even built
        try:
            provider = registry.create(raw, ref)
        except ProviderError as exc:  # reported by every apply too; not a reason to stay down
            report.warnings.append(f"{where}: not checked: {exc}")
            continue
        try:
            for finding in provider.check():
                out = report.errors if finding.level == "error" else report.warnings
                out.append(f"{where}: {finding.message}")
        except ProviderError as exc:
            report.warnings.append(f"{where}: not checked, the resource could not be read: {exc}")
        finally:
            provider.close()
    return report
