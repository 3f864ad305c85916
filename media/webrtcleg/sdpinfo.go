package webrtcleg

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// remoteAudio is what pbxd reads from the browser's SDP itself; the rest
// of the SDP is pion's business.
type remoteAudio struct {
	// g711 is the browser's first PCMU or PCMA format, event its
	// telephone-event/8000 format (hasEvent false without one).
	g711     webrtc.RTPCodecParameters
	event    webrtc.RTPCodecParameters
	hasEvent bool
	// pcmu and pcma are both G.711 formats, when offered.
	pcmu, pcma webrtc.RTPCodecParameters
	// dir is the section's direction as the browser wrote it (sendrecv
	// when it wrote none).
	dir string
}

// choose returns the G.711 format to answer with: the one the leg already
// sends (current, on a re-offer) if it is still offered, else the first.
func (ra remoteAudio) choose(current string) webrtc.RTPCodecParameters {
	switch {
	case current == "PCMU" && ra.pcmu.MimeType != "":
		return ra.pcmu
	case current == "PCMA" && ra.pcma.MimeType != "":
		return ra.pcma
	}
	return ra.g711
}

// sends is true unless the browser said recvonly or inactive: only then
// is a media timeout meaningful.
func (ra remoteAudio) sends() bool { return ra.dir == dirSendrecv || ra.dir == dirSendonly }

// receives is true unless the browser said sendonly or inactive (it holds
// the call): only then is media sent to it.
func (ra remoteAudio) receives() bool { return ra.dir == dirSendrecv || ra.dir == dirRecvonly }

// The SDP direction attributes.
const (
	dirSendrecv = "sendrecv"
	dirSendonly = "sendonly"
	dirRecvonly = "recvonly"
	dirInactive = "inactive"
)

// answerDirection is the RFC 3264 §6.1 answer to an offered direction.
func answerDirection(offered string) string {
	switch offered {
	case dirSendonly:
		return dirRecvonly
	case dirRecvonly:
		return dirSendonly
	case dirInactive:
		return dirInactive
	}
	return dirSendrecv
}

// setDirection rewrites the direction attribute of body's first audio
// section that is not rejected (where parseRemote looks); a section
// without one gets none added. See Leg.Answer for why.
func setDirection(body []byte, dir string) []byte {
	lines := strings.SplitAfter(string(body), "\n")
	inAudio, seen := false, false
	for i, line := range lines {
		text := strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(text, "m=") {
			if seen {
				break
			}
			f := strings.Fields(text)
			inAudio = f[0] == "m=audio" && len(f) > 1 && f[1] != "0"
			seen = inAudio
			continue
		}
		if !inAudio {
			continue
		}
		switch strings.TrimPrefix(text, "a=") {
		case dirSendrecv, dirSendonly, dirRecvonly, dirInactive:
			lines[i] = "a=" + dir + line[len(text):]
		}
	}
	return []byte(strings.Join(lines, ""))
}

// parseRemote reads the first audio section of an SDP body that is not
// rejected (port 0). hasG711 is false when it offers neither PCMU nor
// PCMA.
func parseRemote(body []byte) (ra remoteAudio, hasG711 bool, err error) {
	var s sdp.SessionDescription
	if err := s.Unmarshal(body); err != nil {
		return ra, false, fmt.Errorf("webrtcleg: SDP: %w", err)
	}
	for _, md := range s.MediaDescriptions {
		if md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		ra.dir = direction(md.Attributes, direction(s.Attributes, dirSendrecv))
		rtpmaps, fmtps := map[string]string{}, map[string]string{}
		for _, a := range md.Attributes {
			pt, rest, ok := strings.Cut(a.Value, " ")
			switch {
			case !ok:
			case a.Key == "rtpmap":
				rtpmaps[pt] = strings.TrimSpace(rest)
			case a.Key == "fmtp":
				fmtps[pt] = strings.TrimSpace(rest)
			}
		}
		for _, f := range md.MediaName.Formats {
			n, err := strconv.ParseUint(f, 10, 7)
			if err != nil {
				continue
			}
			enc, ok := rtpmaps[f]
			if !ok {
				switch n { // static types may come without rtpmap
				case 0:
					enc = "PCMU/8000"
				case 8:
					enc = "PCMA/8000"
				}
			}
			name, rate, _ := strings.Cut(enc, "/")
			rate, _, _ = strings.Cut(rate, "/")
			c := webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(n),
				RTPCodecCapability: webrtc.RTPCodecCapability{ClockRate: 8000, Channels: 1, SDPFmtpLine: fmtps[f]}}
			switch {
			case rate != "8000":
			case strings.EqualFold(name, "PCMU") && ra.pcmu.MimeType == "":
				c.MimeType = webrtc.MimeTypePCMU
				ra.pcmu = c
				if !hasG711 {
					ra.g711, hasG711 = c, true
				}
			case strings.EqualFold(name, "PCMA") && ra.pcma.MimeType == "":
				c.MimeType = webrtc.MimeTypePCMA
				ra.pcma = c
				if !hasG711 {
					ra.g711, hasG711 = c, true
				}
			case strings.EqualFold(name, "telephone-event") && !ra.hasEvent:
				c.MimeType = mimeTelephoneEvent
				ra.event, ra.hasEvent = c, true
			}
		}
		return ra, hasG711, nil
	}
	return ra, false, ErrNoAudio
}

// direction returns the direction attribute among attrs, def when there
// is none.
func direction(attrs []sdp.Attribute, def string) string {
	for _, a := range attrs {
		switch a.Key {
		case dirSendrecv, dirSendonly, dirRecvonly, dirInactive:
			return a.Key
		}
	}
	return def
}
