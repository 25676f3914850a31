"""tpmm.Error instances made in Python, and the hint peers get when a rank
could not prepare its call."""
import re

from . import _tpmm
from ._tpmm import Error

# The library's report of another rank's rejected arguments, when what it
# rejected is a missing data pointer or counts: the binding passes one only
# for a tensor it could not prepare (tpmm._call.Call, Plan.fail), the other
# for counts it could not read. The report leads the message, or follows a
# disagreement ("...; rank R also rejected its arguments: ...").
_PEER_NO_DATA = re.compile(r'(?:^|; )rank (\d+) (?:of group ".*?" |also )rejected its arguments: \S+: '
                           r'(?:[\w\[\]]+: data|counts) is NULL', re.S)


def error(status, message):
    e = Error(message)
    e.status = status
    e.status_string = _tpmm.status_string(status)
    e.message = message
    return e


def with_peer_hint(e):
    """e, or e with a sentence saying that the failing rank's binding could
    not prepare its call (so that the peers' message is not a riddle)."""
    m = _PEER_NO_DATA.search(e.message or "")
    if not m:
        return e
    return error(e.status, f"{e.message} (rank {m.group(1)} could not prepare its call in Python, e.g. out of memory "
                           "or an input it cannot read, and took part as a failing rank; that rank raised the "
                           "original exception)")
