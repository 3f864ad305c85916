package sdp

import (
	"slices"
	"strings"
)

// Change is a set of differences between two descriptions of the same
// session, as a re-INVITE brings them.
type Change uint8

// The differences Diff reports.
const (
	// AddrChanged: the remote RTP or RTCP address, or rtcp-mux, changed;
	// the RTP leg must send elsewhere.
	AddrChanged Change = 1 << iota
	// CodecsChanged: the usable formats (order, payload types, names,
	// rates, fmtp) or the telephone-event type changed; renegotiate.
	CodecsChanged
	// DirectionChanged: the audio direction attribute changed.
	DirectionChanged
	// HoldChanged: IsHold differs, the peer went on or off hold.
	HoldChanged
)

// Has reports whether c contains all of x.
func (c Change) Has(x Change) bool { return c&x == x }

// String lists the changes for logs, e.g. "addr|hold", or "none".
func (c Change) String() string {
	if c == 0 {
		return "none"
	}
	var parts []string
	for _, n := range []struct {
		c    Change
		name string
	}{
		{AddrChanged, "addr"},
		{CodecsChanged, "codecs"},
		{DirectionChanged, "direction"},
		{HoldChanged, "hold"},
	} {
		if c.Has(n.c) {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, "|")
}

// Diff compares the audio of a session's previous and next description, e.g.
// the SDP of the initial INVITE and of a re-INVITE. A session without audio
// differs from one with audio in every respect; two without audio do not
// differ. Either may be nil, which counts as no audio.
func Diff(prev, next *Session) Change {
	var pa, na *Audio
	if prev != nil {
		pa = prev.Audio
	}
	if next != nil {
		na = next.Audio
	}
	switch {
	case pa == nil && na == nil:
		return 0
	case pa == nil || na == nil:
		return AddrChanged | CodecsChanged | DirectionChanged | HoldChanged
	}
	var c Change
	if pa.Addr != na.Addr || pa.RTCP != na.RTCP || pa.RTCPMux != na.RTCPMux {
		c |= AddrChanged
	}
	if pa.TelephoneEvent != na.TelephoneEvent || !slices.Equal(pa.Formats, na.Formats) {
		c |= CodecsChanged
	}
	if pa.Direction != na.Direction {
		c |= DirectionChanged
	}
	if prev.IsHold() != next.IsHold() {
		c |= HoldChanged
	}
	return c
}
