# @description ReaTimbre: reapy server (loopback only, allow-listed functions)
# @version 0.1.0
# @author ReaTimbre
# @about
#   Lets ReaTimbre's batch jobs drive this REAPER from outside through reapy's protocol, safely: the server
#   binds 127.0.0.1 and only calls the ReaScript functions ReaTimbre needs (never code named by a request).
#   Needs the python-reapy package in the Python that REAPER uses. 'install.py --reaper --reapy' also runs it
#   whenever REAPER starts (a few marked lines in Scripts/__startup.py); REAPER's web interface is not needed.
#   Port: 2306, or the ExtState ReaTimbre/reapy_port.
import os
import sys

from reaper_python import *  # noqa: F403

try:
    _HERE = os.path.dirname(os.path.abspath(__file__))
except NameError:
    _HERE = os.path.join(RPR_GetResourcePath(), "Scripts", "ReaTimbre")  # noqa: F405
sys.path.insert(0, _HERE)

import reatimbre_action  # noqa: E402


def start():
    from extension import reapy_bridge

    port = int(reatimbre_action.get_state("reapy_port") or reapy_bridge.DEFAULT_PORT)
    reapy_bridge.start_in_reaper(port)
    reatimbre_action.status(f"reapy server listening on 127.0.0.1:{port}")


reatimbre_action.run(start)
