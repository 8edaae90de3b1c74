"""Transitional alias: the helpers moved to ``service.testing`` (issue 11). Branches written
before the move still import ``tests.helpers.<module>``; remove this file once none do."""

import sys

from service.testing import hostile, images, postgres, server, system_deps, tiny_model

for _module in (hostile, images, postgres, server, system_deps, tiny_model):
    sys.modules[f"{__name__}.{_module.__name__.rsplit('.', 1)[1]}"] = _module
