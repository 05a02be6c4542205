# @description ReaTimbre: reapy server (loopback only, allow-listed functions)
# @version 0.1.0
# @author ReaTimbre
# @about
#   Lets ReaTimbre's batch jobs drive this REAPER from outside through reapy's protocol, safely: the server
#   binds 127.0.0.1 and only calls the ReaScript functions ReaTimbre needs (never code named by a request).
#   Needs the python-reapy package in the Python that REAPER uses. Installed by 'install.py --reaper --reapy',
#   which also makes REAPER run it at startup.
import os
import sys

from reaper_python import *  # noqa: F403

try:
    _HERE = os.path.dirname(os.path.abspath(__file__))
except NameError:
    _HERE = os.path.join(RPR_GetResourcePath(), "Scripts", "ReaTimbre")  # noqa: F405
sys.path.insert(0, _HERE)

import reatimbre_action  # noqa: E402

REAPY_SERVER_PORT = 2306


def start():
    import reaper_python

    from extension.reapy_bridge import HardenedReapyServer, reaper_python_functions

    global SERVER
    SERVER = HardenedReapyServer(REAPY_SERVER_PORT, reaper_python_functions(reaper_python))
    RPR_SetExtState("reapy", "server_port", str(REAPY_SERVER_PORT), False)  # noqa: F405
    RPR_atexit("RPR_DeleteExtState('reapy', 'server_port', False)")  # noqa: F405
    loop()


def loop():
    SERVER.serve_once()
    RPR_defer("loop()")  # noqa: F405


reatimbre_action.run(start)
