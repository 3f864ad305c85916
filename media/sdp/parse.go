package sdp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	psdp "github.com/pion/sdp/v3"
)

// Session is a parsed SDP body, offer or answer.
type Session struct {
	// Origin is the o= line.
	Origin Origin
	// Conn is the session-level c= address; the zero Addr when there is
	// none or it is not an IP address.
	Conn netip.Addr
	// Direction is the session-level direction attribute, SendRecv when
	// absent. Audio.Direction already applies it.
	Direction Direction
	// Media lists every m-line in the order of the body.
	Media []Media
	// Audio describes the audio stream pbxd would use: the first enabled
	// RTP/AVP audio m-line, or failing that the first enabled audio m-line
	// of any RTP profile. Nil when there is none.
	Audio *Audio
}

// Media is one m-line as written.
type Media struct {
	// Kind is the media type: "audio", "video", "text", "application" or
	// "message".
	Kind string
	// Port is the transport port; 0 means the stream is rejected or
	// disabled.
	Port uint16
	// Proto is the transport protocol, e.g. "RTP/AVP" or
	// "UDP/TLS/RTP/SAVPF".
	Proto string
	// Formats are the m-line's format tokens (payload types for RTP).
	Formats []string
}

// Audio is the audio stream of a Session with its attributes resolved.
type Audio struct {
	// Index is the stream's position in Session.Media.
	Index int
	// Proto is the m-line's transport protocol.
	Proto string
	// Addr is where the peer receives RTP. The media-level c= overrides the
	// session-level one.
	Addr netip.AddrPort
	// RTCP is where the peer receives RTCP: a=rtcp (RFC 3605) if present,
	// else the RTP port + 1. It is the zero AddrPort when the RTP port is
	// 65535 and there is no a=rtcp.
	RTCP netip.AddrPort
	// RTCPMux reports a=rtcp-mux (RFC 5761).
	RTCPMux bool
	// Formats are the usable formats in the m-line's order: static payload
	// types, and dynamic ones that have an rtpmap. Others are left out.
	Formats []Format
	// TelephoneEvent is the payload type of telephone-event/8000, 0 if
	// the stream has none.
	TelephoneEvent uint8
	// Ptime is a=ptime in milliseconds, 0 when absent.
	Ptime int
	// Direction is the media-level direction attribute, else the
	// session-level one, else SendRecv.
	Direction Direction
}

// IsHold reports whether the SDP puts its writer's peer on hold: the audio
// direction is sendonly or inactive, or the connection address is 0.0.0.0
// (RFC 2543 style; :: is treated alike). A session without audio is not on
// hold.
func (s *Session) IsHold() bool {
	if s == nil || s.Audio == nil {
		return false
	}
	a := s.Audio
	return a.Direction == SendOnly || a.Direction == Inactive || a.Addr.Addr().IsUnspecified()
}

// Parse parses an SDP body from a SIP message. It fails with ErrMalformed
// when pion cannot parse the body, it ends before the required t= line, it
// is over MaxBodySize bytes or has more than MaxMedia m-lines, an enabled
// audio stream has no c= address or
// one that is not an IP literal of the announced family, or a port is out of
// range. A body without audio parses; Negotiate rejects it.
func Parse(body []byte) (*Session, error) {
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("%w: body of %d bytes, limit %d", ErrMalformed, len(body), MaxBodySize)
	}
	var d psdp.SessionDescription
	if err := d.UnmarshalString(bodyText(body)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	// pion stops quietly at the end of the text, wherever that is; t= is
	// the last required line and can only come after v=, o= and s=.
	if len(d.TimeDescriptions) == 0 {
		return nil, fmt.Errorf("%w: body ends before t=", ErrMalformed)
	}
	if len(d.MediaDescriptions) > MaxMedia {
		return nil, fmt.Errorf("%w: %d m-lines, limit %d", ErrMalformed, len(d.MediaDescriptions), MaxMedia)
	}

	s := &Session{
		Origin: Origin{
			Username:  d.Origin.Username,
			SessionID: d.Origin.SessionID,
			Version:   d.Origin.SessionVersion,
		},
		Direction: attrDirection(d.Attributes, SendRecv),
		Media:     make([]Media, len(d.MediaDescriptions)),
	}
	sessConn, sessErr := connAddr(d.ConnectionInformation)
	if sessErr == nil {
		s.Conn = sessConn
	}

	audio := -1 // index of the audio stream pbxd would use
	for i, md := range d.MediaDescriptions {
		mn := &md.MediaName
		if mn.Port.Value < 0 || mn.Port.Value > 65535 {
			return nil, fmt.Errorf("%w: m-line %d: port %d", ErrMalformed, i, mn.Port.Value)
		}
		m := Media{
			Kind:    mn.Media,
			Port:    uint16(mn.Port.Value),
			Proto:   joinProto(mn.Protos),
			Formats: mn.Formats,
		}
		s.Media[i] = m
		if m.Kind != "audio" || m.Port == 0 {
			continue
		}
		// Every enabled audio stream needs a connection address, even one
		// pbxd declines: a body that lacks it is broken, not just foreign.
		if md.ConnectionInformation != nil {
			if _, err := connAddr(md.ConnectionInformation); err != nil {
				return nil, fmt.Errorf("%w: m-line %d: %w", ErrMalformed, i, err)
			}
		} else if sessErr != nil {
			return nil, fmt.Errorf("%w: m-line %d: %w", ErrMalformed, i, sessErr)
		}
		switch {
		case !isRTP(mn.Protos):
		case audio < 0:
			audio = i
		case m.Proto == protoRTPAVP && s.Media[audio].Proto != protoRTPAVP:
			audio = i
		}
	}
	if audio >= 0 {
		a, err := parseAudio(d.MediaDescriptions[audio], s, audio, sessConn)
		if err != nil {
			return nil, fmt.Errorf("%w: m-line %d: %w", ErrMalformed, audio, err)
		}
		s.Audio = a
	}
	return s, nil
}

// bodyText returns the body as a string that ends in a line break. pion
// wants one after the last attribute, and SIP peers do not always send it.
func bodyText(body []byte) string {
	if len(body) > 0 && body[len(body)-1] == '\n' {
		return string(body)
	}
	var b strings.Builder
	b.Grow(len(body) + 2)
	b.Write(body)
	b.WriteString("\r\n")
	return b.String()
}

// joinProto writes the proto back as one token, without allocating for the
// common RTP/AVP.
func joinProto(p []string) string {
	if len(p) == 2 && p[0] == "RTP" && p[1] == "AVP" {
		return protoRTPAVP
	}
	return strings.Join(p, "/")
}

// isRTP reports whether a proto is an RTP profile (RTP/AVP, RTP/SAVPF,
// UDP/TLS/RTP/SAVPF, …), whose formats are payload types.
func isRTP(p []string) bool {
	for _, e := range p {
		if e == "RTP" {
			return true
		}
	}
	return false
}

// connError explains why a c= line cannot be used.
type connError struct{ reason, value string }

func (e *connError) Error() string {
	if e.value == "" {
		return "connection address: " + e.reason
	}
	return fmt.Sprintf("connection address %q: %s", e.value, e.reason)
}

// connAddr returns the IP address of a c= line. Host names, zones and a
// family that contradicts the address type are refused; a multicast TTL or
// count after "/" is ignored.
func connAddr(c *psdp.ConnectionInformation) (netip.Addr, error) {
	if c == nil || c.Address == nil || c.Address.Address == "" {
		return netip.Addr{}, &connError{reason: "missing"}
	}
	return ipFor(c.AddressType, c.Address.Address)
}

// ipFor parses an address of SDP address type IP4 or IP6.
func ipFor(addrType, value string) (netip.Addr, error) {
	text, _, _ := strings.Cut(value, "/")
	ip, err := netip.ParseAddr(text)
	switch {
	case err != nil:
		return netip.Addr{}, &connError{reason: "not an IP address", value: value}
	case ip.Zone() != "":
		return netip.Addr{}, &connError{reason: "has a zone", value: value}
	case addrType == "IP4" && !ip.Is4():
		return netip.Addr{}, &connError{reason: "not IPv4", value: value}
	case addrType == "IP6" && !ip.Is6():
		return netip.Addr{}, &connError{reason: "not IPv6", value: value}
	case addrType != "IP4" && addrType != "IP6":
		return netip.Addr{}, &connError{reason: "unknown address type " + addrType, value: value}
	}
	return ip, nil
}

// attrDirection returns the first direction attribute in attrs, else def.
func attrDirection(attrs []psdp.Attribute, def Direction) Direction {
	for _, a := range attrs {
		if d, ok := parseDirection(a.Key); ok {
			return d
		}
	}
	return def
}

// rtpmapEntry is what a=rtpmap and a=fmtp say about one payload type.
type rtpmapEntry struct {
	name       string
	rate       uint32
	channels   uint8
	mapped     bool
	fmtp       string
	fmtpSeen   bool
	listedOnce bool
}

// parseAudio resolves the attributes of the chosen audio m-line.
func parseAudio(md *psdp.MediaDescription, s *Session, index int, sessConn netip.Addr) (*Audio, error) {
	ip := sessConn
	if md.ConnectionInformation != nil {
		var err error
		if ip, err = connAddr(md.ConnectionInformation); err != nil {
			return nil, err // Parse checked this already
		}
	}
	port := s.Media[index].Port
	a := &Audio{
		Index:     index,
		Proto:     s.Media[index].Proto,
		Addr:      netip.AddrPortFrom(ip, port),
		Direction: s.Direction,
	}
	if port < 65535 {
		a.RTCP = netip.AddrPortFrom(ip, port+1)
	}

	var pts [128]rtpmapEntry
	dirSet, rtcpSet := false, false
	for _, at := range md.Attributes {
		switch at.Key {
		case "rtpmap":
			pt, rest, ok := ptPrefix(at.Value)
			if !ok || pts[pt].mapped {
				continue
			}
			if name, rate, ch, ok := parseRtpmap(rest); ok {
				e := &pts[pt]
				e.name, e.rate, e.channels, e.mapped = name, rate, ch, true
			}
		case "fmtp":
			pt, rest, ok := ptPrefix(at.Value)
			if ok && !pts[pt].fmtpSeen {
				pts[pt].fmtp, pts[pt].fmtpSeen = rest, true
			}
		case "ptime":
			if v, err := strconv.Atoi(strings.TrimSpace(at.Value)); err == nil && v > 0 && v <= 1000 && a.Ptime == 0 {
				a.Ptime = v
			}
		case "rtcp":
			if rtcpSet {
				continue
			}
			rtcp, err := parseRTCP(at.Value, ip)
			if err != nil {
				return nil, err
			}
			a.RTCP, rtcpSet = rtcp, true
		case "rtcp-mux":
			a.RTCPMux = true
		default:
			if d, ok := parseDirection(at.Key); ok && !dirSet {
				a.Direction, dirSet = d, true
			}
		}
	}

	a.Formats = make([]Format, 0, len(md.MediaName.Formats))
	for _, f := range md.MediaName.Formats {
		pt, ok := parsePT(f)
		if !ok || pts[pt].listedOnce {
			continue
		}
		e := &pts[pt]
		e.listedOnce = true
		var fm Format
		if e.mapped {
			fm = Format{PT: pt, Name: e.name, ClockRate: e.rate, Channels: e.channels}
		} else if fm, ok = staticFormat(pt); !ok {
			continue // a dynamic type without rtpmap says nothing usable
		}
		fm.Fmtp = e.fmtp
		a.Formats = append(a.Formats, fm)
		if a.TelephoneEvent == 0 && pt != 0 && fm.IsTelephoneEvent() {
			a.TelephoneEvent = pt
		}
	}
	return a, nil
}

// parsePT parses an RTP payload type, 0 to 127.
func parsePT(s string) (uint8, bool) {
	if len(s) == 0 || len(s) > 3 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 127 {
		return 0, false
	}
	return uint8(n), true
}

// ptPrefix splits "<pt> <rest>" as in a=rtpmap and a=fmtp.
func ptPrefix(v string) (uint8, string, bool) {
	head, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	pt, ok := parsePT(head)
	return pt, strings.TrimSpace(rest), ok
}

// parseRtpmap parses "<encoding name>/<clock rate>[/<channels>]".
func parseRtpmap(v string) (name string, rate uint32, channels uint8, ok bool) {
	name, rest, found := strings.Cut(v, "/")
	if !found || name == "" {
		return "", 0, 0, false
	}
	rateText, chText, hasCh := strings.Cut(rest, "/")
	r, err := strconv.ParseUint(rateText, 10, 32)
	if err != nil || r == 0 {
		return "", 0, 0, false
	}
	channels = 1
	if hasCh {
		c, err := strconv.ParseUint(chText, 10, 8)
		if err != nil || c == 0 {
			return "", 0, 0, false
		}
		channels = uint8(c)
	}
	return name, uint32(r), channels, true
}

// parseRTCP parses RFC 3605 "a=rtcp:<port> [IN IP4|IP6 <address>]"; without
// an address, RTCP goes to the RTP address.
func parseRTCP(v string, rtpIP netip.Addr) (netip.AddrPort, error) {
	var f [5]string
	n := 0
	for field := range strings.FieldsSeq(v) {
		if n == len(f) {
			return netip.AddrPort{}, fmt.Errorf("a=rtcp:%s: too many fields", v)
		}
		f[n] = field
		n++
	}
	if n != 1 && n != 4 {
		return netip.AddrPort{}, fmt.Errorf("a=rtcp:%s: want a port, optionally with IN IP4|IP6 <address>", v)
	}
	port, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("a=rtcp:%s: port out of range", v)
	}
	ip := rtpIP
	if n == 4 {
		if f[1] != "IN" {
			return netip.AddrPort{}, fmt.Errorf("a=rtcp:%s: network type %q", v, f[1])
		}
		if ip, err = ipFor(f[2], f[3]); err != nil {
			return netip.AddrPort{}, fmt.Errorf("a=rtcp: %w", err)
		}
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}
