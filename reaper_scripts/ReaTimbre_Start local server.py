# @description ReaTimbre: Start local server
# @version 0.1.0
# @author ReaTimbre
# @about
#   Starts the local ReaTimbre inference server (reatimbre serve) that the other ReaTimbre actions talk to.
#   It listens on 127.0.0.1 only and requires the token in ReaTimbre's config folder.
import os
import sys

from reaper_python import *  # noqa: F403

try:
    _HERE = os.path.dirname(os.path.abspath(__file__))
except NameError:  # REAPER need not define __file__ for the script it runs; sys.path[0] is its folder
    _HERE = os.path.abspath(sys.path[0])
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import reatimbre_action  # noqa: E402
import reatimbre_server  # noqa: E402

reatimbre_action.run(reatimbre_server.start)
