package pbx

import "github.com/emiago/sipgo/sip"

// Transactions that have sent or received their final response are kept
// only to absorb retransmissions, and RFC 3261 keeps most of them for
// 64*T1 = 32 s over UDP (Timer J for non-INVITE server transactions,
// Timers L and M for accepted INVITEs, RFC 6026). Each holds its request,
// its response and a timer, so at a few hundred calls a second tens of
// thousands of them sit in memory long after their calls ended (hundreds
// of MiB measured at 1,600 calls/s). pbxd keeps them for T4 = 5 s, as
// stateful SIP proxies commonly do: a request retransmitted after that is
// one whose answer was lost for five seconds, and it gets 481 instead of
// a replayed answer. Retransmission timers (A, B, E, F, G, H) are not
// touched.
func init() {
	sip.Timer_J = sip.T4
	sip.Timer_L = sip.T4
	sip.Timer_M = sip.T4
}
