# @description ReaTimbre: reapy server (loopback only, allow-listed functions)
# @version 0.1.0
# @author ReaTimbre
# @about
#   Lets ReaTimbre's batch jobs drive this REAPER from outside through reapy's protocol, safely: the server
#   binds 127.0.0.1, requires ReaTimbre's token on every call and only calls the ReaScript functions ReaTimbre
#   needs (never code named by a request). Standard library only. 'install.py --reaper --reapy' also runs it
#   whenever REAPER starts (a few marked lines in Scripts/__startup.py); REAPER's web interface is not needed.
#   Port: 2306, or the ExtState ReaTimbre/reapy_port.
import os
import sys

from reaper_python import *  # noqa: F403

try:
    _HERE = os.path.dirname(os.path.abspath(__file__))
except NameError:  # REAPER may run a script without __file__; its folder is then sys.path[0]
    _HERE = sys.path[0]
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import reatimbre_action  # noqa: E402
import reatimbre_client  # noqa: E402


def start():
    from extension import reapy_bridge

    directory = reatimbre_client.config_dir()
    port = int(reatimbre_action.get_state("reapy_port") or reapy_bridge.DEFAULT_PORT)
    server = reapy_bridge.start_in_reaper(reatimbre_client.read_token(directory), directory, port)
    reatimbre_action.status(f"reapy server listening on 127.0.0.1:{server.port} (token required)")


reatimbre_action.run(start)
