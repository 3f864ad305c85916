package main

// What a user of a SIP peer would observe of the media: RTP packets that
// flow to and from the peer's media port, and whether they carry sound.
//
// The packets are captured on the loopback interface with tcpdump, filtered
// in the kernel by the peer's media ports (peers_capture_test.go), and read
// back by a small classic-pcap reader here. (SIPp's own RTP counters cover
// only what it sends, and baresip's call statistics only reach the log
// when a call ends.) A capture needs root, like SIPp's play_pcap_audio,
// which sends through a raw socket.
//
// The file also holds the audio helpers the peers share: G.711 µ-law and
// A-law, a tone generator, a Goertzel detector, WAV and pcap writers.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"os"
	"strings"
	"time"

	"pbxd/media/g711"
	"pbxd/media/tone"
)

// audioRate is the sample rate of every G.711 stream here.
const audioRate = 8000

// samplesPerPacket is 20 ms of G.711 audio, the usual packetisation.
const samplesPerPacket = 160

// silenceRMS is the level (of 32767) below which 20 ms of audio counts as
// silence. G.711 idle noise and comfort noise stay well under it; a tone at
// toneAmplitude is about 40 times louder.
const silenceRMS = 150

// toneAmplitude is the peak of the tones the peers send (-12 dBFS).
const toneAmplitude = 8000

// --- G.711 ---

// The tests code and decode G.711 with pbxd's own tables (media/g711,
// checked there sample by sample against golden data).
var (
	ulawEncode = g711.EncodeUlaw
	ulawDecode = g711.DecodeUlaw
	alawEncode = g711.EncodeAlaw
	alawDecode = g711.DecodeAlaw
)

// g711Decode decodes an RTP payload of static payload type 0 (PCMU) or 8
// (PCMA); other payload types give nil.
func g711Decode(pt uint8, payload []byte) []int16 {
	var dec func(byte) int16
	switch pt {
	case 0:
		dec = ulawDecode
	case 8:
		dec = alawDecode
	default:
		return nil
	}
	out := make([]int16, len(payload))
	for i, b := range payload {
		out[i] = dec(b)
	}
	return out
}

// codecPT maps a G.711 codec name to its static payload type.
func codecPT(name string) (uint8, bool) {
	switch strings.ToUpper(name) {
	case "PCMU":
		return 0, true
	case "PCMA":
		return 8, true
	}
	return 0, false
}

// --- tones and levels ---

// toneSamples is n samples of a sine at hz with amplitude peak, at 8 kHz.
func toneSamples(hz, peak float64, n int) []int16 { return tone.Sine(hz, int16(peak), audioRate, n) }

// rms is the root mean square of s.
func rms(s []int16) float64 { return tone.RMS(s) }

// goertzel estimates the amplitude of the hz component of s (8 kHz): a
// sine of peak A at hz gives about A (tone.Power gives A²/2).
func goertzel(s []int16, hz float64) float64 { return math.Sqrt(2 * tone.Power(s, hz, audioRate)) }

// audioLevels describes audio cut into 20 ms blocks.
type audioLevels struct {
	Blocks    int // 20 ms blocks in all
	NonSilent int // blocks louder than silenceRMS
	Tone      int // non-silent blocks whose energy is mostly the tone asked for
}

// Seconds is the duration of the non-silent blocks.
func (l audioLevels) Seconds() float64 { return float64(l.NonSilent) * 0.02 }

// ToneSeconds is the duration of the blocks that carry the tone.
func (l audioLevels) ToneSeconds() float64 { return float64(l.Tone) * 0.02 }

// measureAudio cuts s into 20 ms blocks and counts those that are loud and
// those that carry a tone at hz (hz 0 counts no tone). A block carries the
// tone when the tone's amplitude is at least 0.7 of the block's peak-equivalent
// level, i.e. the tone holds at least half of its energy.
func measureAudio(s []int16, hz float64) audioLevels {
	var l audioLevels
	for off := 0; off+samplesPerPacket <= len(s); off += samplesPerPacket {
		b := s[off : off+samplesPerPacket]
		l.Blocks++
		r := rms(b)
		if r < silenceRMS {
			continue
		}
		l.NonSilent++
		if hz > 0 && goertzel(b, hz) >= 0.7*r*math.Sqrt2 {
			l.Tone++
		}
	}
	return l
}

// --- WAV ---

// writeWAV writes 16-bit PCM mono samples at rate as a WAV file.
func writeWAV(path string, rate int, samples []int16) error {
	var b bytes.Buffer
	if err := tone.WriteWAV(&b, rate, 1, samples); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// put appends fixed-size values to b in byte order bo.
func put(b *bytes.Buffer, bo binary.ByteOrder, vs ...any) {
	for _, v := range vs {
		if err := binary.Write(b, bo, v); err != nil {
			panic(err) // only fixed-size values are passed
		}
	}
}

// readWAV reads a 16-bit PCM WAV file and returns its rate, channel count
// and samples (interleaved when there are several channels).
func readWAV(path string) (rate, channels int, samples []int16, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, nil, err
	}
	if len(raw) < 12 || string(raw[:4]) != "RIFF" || string(raw[8:12]) != "WAVE" {
		return 0, 0, nil, fmt.Errorf("%s: not a WAV file", path)
	}
	var fmtOK bool
	for p := 12; p+8 <= len(raw); {
		id := string(raw[p : p+4])
		size := int(binary.LittleEndian.Uint32(raw[p+4:]))
		body := raw[p+8:]
		if size > len(body) || size < 0 {
			// libsndfile leaves the data size open while it writes.
			size = len(body)
		}
		if id == "data" && size == 0 {
			// and some writers leave it at 0 until they close the file.
			size = len(body)
		}
		body = body[:size]
		switch id {
		case "fmt ":
			if size < 16 {
				return 0, 0, nil, fmt.Errorf("%s: short fmt chunk", path)
			}
			if f := binary.LittleEndian.Uint16(body); f != 1 && f != 0xfffe {
				return 0, 0, nil, fmt.Errorf("%s: format %d is not PCM", path, f)
			}
			channels = int(binary.LittleEndian.Uint16(body[2:]))
			rate = int(binary.LittleEndian.Uint32(body[4:]))
			if bits := binary.LittleEndian.Uint16(body[14:]); bits != 16 {
				return 0, 0, nil, fmt.Errorf("%s: %d bits per sample, want 16", path, bits)
			}
			fmtOK = true
		case "data":
			if !fmtOK {
				return 0, 0, nil, fmt.Errorf("%s: data before fmt", path)
			}
			samples = make([]int16, size/2)
			for i := range samples {
				samples[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return rate, channels, samples, nil
		}
		p += 8 + size + size&1
	}
	return 0, 0, nil, fmt.Errorf("%s: no data chunk", path)
}

// --- pcap writing ---

// pcap link types this file reads and writes.
const (
	linkNull     = 0
	linkEthernet = 1
	linkRaw      = 101
	linkLinuxSLL = 113
	linkSLL2     = 276
)

// rtpHeaderLen is the fixed RTP header without CSRCs or extension.
const rtpHeaderLen = 12

// writeRTPPcap writes samples as a pcap of G.711 RTP packets of payload
// type pt (0 or 8), one per 20 ms, from 127.0.0.1:40000 to 127.0.0.1:40002
// over Ethernet. SIPp's play_pcap_audio replays it with the call's media
// ports and addresses and keeps the RTP headers as written.
func writeRTPPcap(path string, pt uint8, samples []int16) error {
	var enc func(int16) byte
	switch pt {
	case 0:
		enc = ulawEncode
	case 8:
		enc = alawEncode
	default:
		return fmt.Errorf("payload type %d is not G.711", pt)
	}
	var b bytes.Buffer
	le := binary.LittleEndian
	put(&b, le, uint32(0xa1b2c3d4), uint16(2), uint16(4), int32(0), uint32(0), uint32(65535), uint32(linkEthernet))
	start := time.Unix(1_700_000_000, 0)
	seq := uint16(0x1234)
	ts := uint32(0x10000000)
	const ssrc = 0x50bd0001
	for n := 0; n*samplesPerPacket < len(samples); n++ {
		chunk := samples[n*samplesPerPacket : min((n+1)*samplesPerPacket, len(samples))]
		rtp := make([]byte, rtpHeaderLen, rtpHeaderLen+samplesPerPacket)
		rtp[0] = 0x80
		rtp[1] = pt
		if n == 0 {
			rtp[1] |= 0x80 // marker on the first packet of a talk spurt
		}
		binary.BigEndian.PutUint16(rtp[2:], seq+uint16(n))
		binary.BigEndian.PutUint32(rtp[4:], ts+uint32(n*samplesPerPacket))
		binary.BigEndian.PutUint32(rtp[8:], ssrc)
		for _, s := range chunk {
			rtp = append(rtp, enc(s))
		}
		frame := ethernetUDP(netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("127.0.0.1:40002"), rtp)
		at := start.Add(time.Duration(n) * 20 * time.Millisecond)
		put(&b, le, uint32(at.Unix()), uint32(at.Nanosecond()/1000), uint32(len(frame)), uint32(len(frame)))
		b.Write(frame)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// ethernetUDP builds an Ethernet/IPv4/UDP frame around payload.
func ethernetUDP(src, dst netip.AddrPort, payload []byte) []byte {
	f := make([]byte, 14+20+8, 14+20+8+len(payload))
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8] = 64
	ip[9] = 17
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := f[34:42]
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	// A zero UDP checksum means "none" over IPv4; SIPp computes its own.
	return append(f, payload...)
}

// --- pcap reading ---

// udpPacket is one UDP datagram seen in a capture.
type udpPacket struct {
	At       time.Time
	Src, Dst netip.AddrPort
	Payload  []byte
}

// readPcap reads the IPv4 and IPv6 UDP datagrams of a classic pcap file
// (either byte order, micro- or nanosecond stamps) with the link types
// tcpdump writes for the loopback interface: Ethernet on Linux, BSD null,
// raw IP and Linux cooked v1/v2 (for -i any). Other packets are skipped; a
// truncated last record (tcpdump killed while writing) ends the read
// without an error.
func readPcap(path string) ([]udpPacket, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(raw) < 24 {
		return nil, fmt.Errorf("%s: %d bytes, too short for a pcap header", path, len(raw))
	}
	var bo binary.ByteOrder
	nano := false
	switch m := binary.LittleEndian.Uint32(raw); m {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	case 0x4d3cb2a1:
		bo, nano = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("%s: magic %#x is not classic pcap (pcapng?)", path, m)
	}
	link := bo.Uint32(raw[20:]) & 0x0fffffff
	var out []udpPacket
	for p := 24; p+16 <= len(raw); {
		sec, frac := bo.Uint32(raw[p:]), bo.Uint32(raw[p+4:])
		incl := int(bo.Uint32(raw[p+8:]))
		p += 16
		if incl < 0 || p+incl > len(raw) {
			break
		}
		data := raw[p : p+incl]
		p += incl
		if !nano {
			frac *= 1000
		}
		ip, ok := linkPayload(link, data)
		if !ok {
			continue
		}
		if u, ok := parseIPUDP(ip); ok {
			u.At = time.Unix(int64(sec), int64(frac))
			out = append(out, u)
		}
	}
	return out, nil
}

// linkPayload strips the link-layer header and returns the IP packet.
func linkPayload(link uint32, d []byte) ([]byte, bool) {
	var etherType uint16
	switch link {
	case linkEthernet:
		if len(d) < 14 {
			return nil, false
		}
		etherType, d = binary.BigEndian.Uint16(d[12:]), d[14:]
		for etherType == 0x8100 && len(d) >= 4 { // VLAN tag
			etherType, d = binary.BigEndian.Uint16(d[2:]), d[4:]
		}
	case linkNull:
		if len(d) < 4 {
			return nil, false
		}
		// The family is in host byte order: 2 is IPv4; 24, 28 and 30 are
		// IPv6 on the BSDs. Look at the IP version instead.
		return d[4:], true
	case linkRaw, 12, 14:
		return d, true
	case linkLinuxSLL:
		if len(d) < 16 {
			return nil, false
		}
		etherType, d = binary.BigEndian.Uint16(d[14:]), d[16:]
	case linkSLL2:
		if len(d) < 20 {
			return nil, false
		}
		etherType, d = binary.BigEndian.Uint16(d[0:]), d[20:]
	default:
		return nil, false
	}
	return d, etherType == 0x0800 || etherType == 0x86dd
}

// parseIPUDP decodes an IPv4 or IPv6 packet carrying UDP (unfragmented,
// no IPv6 extension headers).
func parseIPUDP(ip []byte) (udpPacket, bool) {
	if len(ip) < 1 {
		return udpPacket{}, false
	}
	var src, dst netip.Addr
	var rest []byte
	switch ip[0] >> 4 {
	case 4:
		ihl := int(ip[0]&0x0f) * 4
		if len(ip) < 20 || ihl < 20 || len(ip) < ihl || ip[9] != 17 {
			return udpPacket{}, false
		}
		if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 { // a fragment
			return udpPacket{}, false
		}
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if total >= ihl && total < len(ip) {
			ip = ip[:total] // drop Ethernet padding
		}
		src = netip.AddrFrom4([4]byte(ip[12:16]))
		dst = netip.AddrFrom4([4]byte(ip[16:20]))
		rest = ip[ihl:]
	case 6:
		if len(ip) < 40 || ip[6] != 17 {
			return udpPacket{}, false
		}
		src = netip.AddrFrom16([16]byte(ip[8:24]))
		dst = netip.AddrFrom16([16]byte(ip[24:40]))
		rest = ip[40:]
	default:
		return udpPacket{}, false
	}
	if len(rest) < 8 {
		return udpPacket{}, false
	}
	ulen := int(binary.BigEndian.Uint16(rest[4:]))
	if ulen < 8 || ulen > len(rest) {
		ulen = len(rest)
	}
	return udpPacket{
		Src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(rest[0:])),
		Dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(rest[2:])),
		Payload: rest[8:ulen],
	}, true
}

// --- RTP ---

// rtpPacket is the part of an RTP packet the checks look at.
type rtpPacket struct {
	PayloadType uint8
	Marker      bool
	Seq         uint16
	Timestamp   uint32
	SSRC        uint32
	Payload     []byte
}

// parseRTP decodes an RTP packet (RFC 3550) and refuses what is not RTP
// version 2 or is RTCP sent to the same port (RFC 5761 payload types 72-76).
func parseRTP(b []byte) (rtpPacket, bool) {
	if len(b) < rtpHeaderLen || b[0]>>6 != 2 {
		return rtpPacket{}, false
	}
	pt := b[1] & 0x7f
	if pt >= 72 && pt <= 76 {
		return rtpPacket{}, false
	}
	off := rtpHeaderLen + int(b[0]&0x0f)*4
	if b[0]&0x10 != 0 { // header extension
		if len(b) < off+4 {
			return rtpPacket{}, false
		}
		off += 4 + int(binary.BigEndian.Uint16(b[off+2:]))*4
	}
	end := len(b)
	if b[0]&0x20 != 0 && end > off { // padding
		end -= int(b[end-1])
	}
	if off > end {
		return rtpPacket{}, false
	}
	return rtpPacket{
		PayloadType: pt,
		Marker:      b[1]&0x80 != 0,
		Seq:         binary.BigEndian.Uint16(b[2:]),
		Timestamp:   binary.BigEndian.Uint32(b[4:]),
		SSRC:        binary.BigEndian.Uint32(b[8:]),
		Payload:     b[off:end],
	}, true
}

// rtpFlow sums up the RTP packets of one direction.
type rtpFlow struct {
	Src, Dst netip.AddrPort // zero when several flows were merged
	// Packets is the number of RTP packets; NotRTP counts the other
	// datagrams (RTCP on a muxed port, STUN …).
	Packets, NotRTP int
	// PayloadTypes counts packets per payload type (0 PCMU, 8 PCMA, 101 …).
	PayloadTypes map[uint8]int
	// SSRCs counts packets per synchronisation source.
	SSRCs map[uint32]int
	// Audio counts G.711 packets and NonSilent those whose decoded payload
	// is louder than silenceRMS.
	Audio, NonSilent int
	// Samples is the decoded G.711 audio in arrival order, for tone checks.
	Samples []int16
	// First and Last are the capture times of the first and last packets.
	First, Last time.Time
}

// Duration is the time between the first and the last packet.
func (f rtpFlow) Duration() time.Duration { return f.Last.Sub(f.First) }

// Levels measures the decoded audio for a tone at hz.
func (f rtpFlow) Levels(hz float64) audioLevels { return measureAudio(f.Samples, hz) }

func (f rtpFlow) String() string {
	return fmt.Sprintf("%v->%v: %d RTP (%d audio, %d non-silent) pt=%v ssrc=%d over %v, %d not RTP",
		f.Src, f.Dst, f.Packets, f.Audio, f.NonSilent, f.PayloadTypes, len(f.SSRCs), f.Duration().Round(time.Millisecond), f.NotRTP)
}

func (f *rtpFlow) add(p udpPacket) {
	if f.PayloadTypes == nil {
		f.PayloadTypes = map[uint8]int{}
		f.SSRCs = map[uint32]int{}
	}
	r, ok := parseRTP(p.Payload)
	if !ok {
		f.NotRTP++
		return
	}
	if f.Packets == 0 || p.At.Before(f.First) {
		f.First = p.At
	}
	if p.At.After(f.Last) {
		f.Last = p.At
	}
	f.Packets++
	f.PayloadTypes[r.PayloadType]++
	f.SSRCs[r.SSRC]++
	if pcm := g711Decode(r.PayloadType, r.Payload); pcm != nil {
		f.Audio++
		if rms(pcm) >= silenceRMS {
			f.NonSilent++
		}
		f.Samples = append(f.Samples, pcm...)
	}
}

// rtpFlows groups datagrams by direction (source and destination address).
func rtpFlows(pkts []udpPacket) []*rtpFlow {
	type key struct{ s, d netip.AddrPort }
	by := map[key]*rtpFlow{}
	var out []*rtpFlow
	for _, p := range pkts {
		k := key{p.Src, p.Dst}
		f := by[k]
		if f == nil {
			f = &rtpFlow{Src: p.Src, Dst: p.Dst}
			by[k] = f
			out = append(out, f)
		}
		f.add(p)
	}
	return out
}
