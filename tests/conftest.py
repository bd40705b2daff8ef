import os
import sys

from hypothesis import HealthCheck, settings

# fast profile for the README test command / CI; thorough: CNNSHAPE_HYPOTHESIS=thorough
# the fast profile is derandomized so that CI runs are repeatable; thorough explores anew
settings.register_profile("fast", max_examples=200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("thorough", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
PROFILE = os.environ.get("CNNSHAPE_HYPOTHESIS", "fast")
settings.load_profile(PROFILE)


def examples(fast: int, thorough: int) -> int:
    """A test's own example count under the loaded profile (for tests slower or faster than
    the profile's default): the one place the profile is read."""
    return thorough if PROFILE == "thorough" else fast


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(ROOT, "specs")
PY = sys.executable
