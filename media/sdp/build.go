package sdp

import (
	"net/netip"
	"strconv"
	"strings"

	psdp "github.com/pion/sdp/v3"
)

// Local describes an SDP body pbxd sends: its offer to a callee, or its
// answer to a caller (see [Answer.Local]).
type Local struct {
	// Origin is the o= line. Keep one per call leg and take Origin.Next
	// for every changed re-offer or re-answer.
	Origin Origin
	// Addr is pbxd's RTP address for the call; IPv4 is written as IN IP4,
	// IPv6 as IN IP6. An invalid Addr is written as 0.0.0.0.
	Addr netip.AddrPort
	// Formats are the codecs to list, in order of preference, with their
	// payload types: an offer lists several, an answer one.
	Formats []Format
	// TelephoneEvent is the payload type of telephone-event/8000, written
	// with fmtp 0-16; 0 leaves telephone-event out.
	TelephoneEvent uint8
	// Direction is the direction attribute.
	Direction Direction
	// RTCP adds a=rtcp:<port+1> for peers that want RTCP spelt out.
	RTCP bool
	// Rejected, for an answer, are the offer's m-lines that pbxd declines,
	// in order; each is written as "m=<kind> 0 <proto> <first format>".
	Rejected []Media
	// AudioIndex is the position of the audio m-line among all m-lines;
	// Rejected fills the others. Values out of range put audio last.
	AudioIndex int
}

// WithDirection returns the description with direction d and the next origin
// version, for a hold (SendOnly or Inactive) or unhold (SendRecv) re-offer.
func (l Local) WithDirection(d Direction) Local {
	l.Direction = d
	l.Origin = l.Origin.Next()
	return l
}

// Hold returns the re-offer that puts the peer on hold: sendonly, so pbxd
// can go on playing music on hold, with the next origin version.
func (l Local) Hold() Local { return l.WithDirection(SendOnly) }

// Unhold returns the re-offer that takes the peer off hold: sendrecv, with
// the next origin version.
func (l Local) Unhold() Local { return l.WithDirection(SendRecv) }

// buildArena holds what Build hands to pion, sized for an offer or answer
// with up to two m-lines and four formats; bigger ones spill into fresh
// slices.
type buildArena struct {
	mds        [2]psdp.MediaDescription
	ptrs       [2]*psdp.MediaDescription
	toks       [2]string
	formats    [4]string
	attrs      [8]psdp.Attribute
	audioProto [1]string
	conn       psdp.ConnectionInformation
	addr       psdp.Address
	times      [1]psdp.TimeDescription
}

// span is a piece of Build's scratch text.
type span struct{ from, to int }

// builtFormat is one payload type to write, its texts as spans.
type builtFormat struct {
	pt, rtpmap, fmtp span
	hasFmtp          bool
}

// Build writes l as an SDP body with CRLF line ends, in the shape SIPp,
// baresip, Asterisk and Kamailio accept:
//
//	v=0
//	o=pbxd <id> <version> IN IP4 <addr>
//	s=pbxd
//	c=IN IP4 <addr>
//	t=0 0
//	m=audio <port> RTP/AVP <pt>...
//	a=rtpmap:<pt> <name>/<rate> for every format
//	a=rtpmap:<te> telephone-event/8000 and a=fmtp:<te> 0-16
//	a=ptime:20
//	a=<direction>
//
// Build never fails; it drops what it cannot write, so the output always
// parses. Formats with a payload type above 127 or repeated, a zero clock
// rate, or a name that is not an SDP token are skipped, and so is an fmtp
// that is not printable ASCII; if no format remains, the audio m-line is
// written with port 0. Fields of Rejected that are not tokens are replaced.
func Build(l Local) []byte {
	// Every string that is not a constant goes into one scratch text, so
	// they cost one allocation together; pion then marshals the result.
	var scratch [320]byte
	text := scratch[:0]

	ip := l.Addr.Addr().Unmap().WithZone("")
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	addrType := "IP4"
	if ip.Is6() {
		addrType = "IP6"
	}
	var addr span
	addr.from = len(text)
	text = ip.AppendTo(text)
	addr.to = len(text)

	var fmtBuf [8]builtFormat
	fmts := fmtBuf[:0]
	var seen [2]uint64 // payload types already written
	add := func(pt uint8, name string, rate uint32, channels uint8, fmtp string) {
		if pt > 127 || seen[pt/64]&(1<<(pt%64)) != 0 || !isToken(name) || strings.ContainsRune(name, '/') || rate == 0 {
			return
		}
		seen[pt/64] |= 1 << (pt % 64)
		var b builtFormat
		b.pt.from = len(text)
		text = strconv.AppendUint(text, uint64(pt), 10)
		b.pt.to = len(text)
		b.rtpmap.from = b.pt.from
		text = append(text, ' ')
		text = append(text, name...)
		text = append(text, '/')
		text = strconv.AppendUint(text, uint64(rate), 10)
		if channels > 1 {
			text = append(text, '/')
			text = strconv.AppendUint(text, uint64(channels), 10)
		}
		b.rtpmap.to = len(text)
		if fmtp != "" && isText(fmtp) {
			b.fmtp.from = len(text)
			text = strconv.AppendUint(text, uint64(pt), 10)
			text = append(text, ' ')
			text = append(text, fmtp...)
			b.fmtp.to = len(text)
			b.hasFmtp = true
		}
		fmts = append(fmts, b)
	}
	for _, f := range l.Formats {
		add(f.PT, f.Name, f.ClockRate, f.Channels, f.Fmtp)
	}
	codecs := len(fmts)
	if l.TelephoneEvent != 0 {
		add(l.TelephoneEvent, "telephone-event", 8000, 1, TelephoneEvents)
	}

	port := l.Addr.Port()
	if codecs == 0 {
		port = 0
	}
	var rtcp span
	if l.RTCP && port != 0 && port < 65535 {
		rtcp.from = len(text)
		text = strconv.AppendUint(text, uint64(port)+1, 10)
		rtcp.to = len(text)
	}
	str := string(text)
	sub := func(s span) string { return str[s.from:s.to] }

	// pion's Marshal lets everything the description points to escape, so
	// the pieces live in one heap block, sized for an ordinary call.
	ar := new(buildArena)

	// The audio m-line.
	formats := ar.formats[:0]
	attrs := ar.attrs[:0]
	for _, f := range fmts {
		formats = append(formats, sub(f.pt))
		attrs = append(attrs, psdp.Attribute{Key: "rtpmap", Value: sub(f.rtpmap)})
		if f.hasFmtp {
			attrs = append(attrs, psdp.Attribute{Key: "fmtp", Value: sub(f.fmtp)})
		}
	}
	if len(formats) == 0 {
		formats = append(formats, "0")
	}
	attrs = append(attrs, psdp.Attribute{Key: "ptime", Value: strconv.Itoa(Ptime)})
	if rtcp.to > 0 {
		attrs = append(attrs, psdp.Attribute{Key: "rtcp", Value: sub(rtcp)})
	}
	attrs = append(attrs, psdp.Attribute{Key: l.Direction.String()})
	ar.audioProto[0] = protoRTPAVP
	audio := psdp.MediaDescription{
		MediaName: psdp.MediaName{
			Media:   "audio",
			Port:    psdp.RangedPort{Value: int(port)},
			Protos:  ar.audioProto[:],
			Formats: formats,
		},
		Attributes: attrs,
	}

	// All m-lines in order, the declined ones around the audio one.
	n := len(l.Rejected) + 1
	at := l.AudioIndex
	if at < 0 || at >= n {
		at = n - 1
	}
	mds, ptrs, toks := ar.mds[:0], ar.ptrs[:0], ar.toks[:0]
	if n > len(ar.mds) {
		mds = make([]psdp.MediaDescription, 0, n)
		ptrs = make([]*psdp.MediaDescription, 0, n)
		toks = make([]string, 0, 2*n)
	}
	for i, r := 0, 0; i < n; i++ {
		if i == at {
			mds = append(mds, audio)
			continue
		}
		m := l.Rejected[r]
		r++
		kind, proto, first := m.Kind, m.Proto, "0"
		if len(m.Formats) > 0 && isToken(m.Formats[0]) {
			first = m.Formats[0]
		}
		if !isToken(kind) {
			kind = "application"
		}
		if !isToken(proto) {
			proto = protoRTPAVP
		}
		toks = append(toks, proto, first)
		t := toks[len(toks)-2:]
		mds = append(mds, psdp.MediaDescription{
			MediaName: psdp.MediaName{
				Media:   kind,
				Protos:  t[:1:1],
				Formats: t[1:2:2],
			},
		})
	}
	for i := range mds {
		ptrs = append(ptrs, &mds[i])
	}

	ar.addr.Address = sub(addr)
	ar.conn = psdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType, Address: &ar.addr}
	d := psdp.SessionDescription{
		Origin: psdp.Origin{
			Username:       originUser(l.Origin.Username),
			SessionID:      l.Origin.SessionID,
			SessionVersion: l.Origin.Version,
			NetworkType:    "IN",
			AddressType:    addrType,
			UnicastAddress: ar.addr.Address,
		},
		SessionName:           "pbxd",
		ConnectionInformation: &ar.conn,
		TimeDescriptions:      ar.times[:],
		MediaDescriptions:     ptrs,
	}
	out, err := d.Marshal()
	if err != nil {
		// pion's Marshal has no failure path today; should one appear,
		// an empty body makes the SIP layer fail the request loudly.
		return nil
	}
	return out
}

// originUser returns the o= user name: u if it is a token, else "pbxd".
func originUser(u string) string {
	if isToken(u) {
		return u
	}
	return "pbxd"
}

// isToken reports whether s is non-empty visible ASCII without spaces, safe
// as one field of an SDP line.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// isText reports whether s is printable ASCII, spaces allowed, safe as the
// rest of an SDP line.
func isText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
