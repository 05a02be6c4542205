# @description ReaTimbre: Audition previous coach step
# @version 0.1.0
# @author ReaTimbre
# @about
#   Sets the synth's parameters to the previous step of the last coach suggestion (steps accumulate; going back
#   before step 1 restores the sound you started from). Assign it to a key to compare steps while playing.
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
import reatimbre_audition  # noqa: E402

reatimbre_action.run(lambda: reatimbre_audition.audition(-1))
