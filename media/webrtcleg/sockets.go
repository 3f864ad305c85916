package webrtcleg

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/pion/ice/v4"
)

// listenAddrs decides which local addresses the engine binds, and whether
// loopback candidates are to be offered.
//
//   - A specific BindIP: that address alone.
//   - BindIP unspecified with PublicIPs replacing the local addresses: one
//     wildcard socket. Every local address then maps to the same public
//     candidate, which pion keeps once; a wildcard socket receives it
//     whichever local address the NAT forwards to.
//   - Otherwise every address of every interface that is up, one socket
//     each on the same port, so that each host candidate's replies leave
//     from the address the browser sent to. Loopback addresses only with
//     Config.Loopback, or when there is nothing else.
func listenAddrs(cfg *Config) (addrs []netip.Addr, loopback bool, err error) {
	if ip := cfg.BindIP.Unmap(); ip.IsValid() && !ip.IsUnspecified() {
		if ip.Is6() && !cfg.IPv6 {
			return nil, false, fmt.Errorf("webrtcleg: bind address %s is IPv6 but IPv6 is off", ip)
		}
		return []netip.Addr{ip}, ip.IsLoopback(), nil
	}
	if len(cfg.PublicIPs) > 0 && !cfg.AdvertisePrivate {
		if cfg.IPv6 {
			return []netip.Addr{netip.IPv6Unspecified()}, true, nil
		}
		return []netip.Addr{netip.IPv4Unspecified()}, true, nil
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, false, fmt.Errorf("webrtcleg: interfaces: %w", err)
	}
	var loop []netip.Addr
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 {
			continue
		}
		ias, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, ia := range ias {
			pfx, err := netip.ParsePrefix(ia.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr().Unmap()
			switch {
			case ip.Is6() && (!cfg.IPv6 || !ip.IsGlobalUnicast() && !ip.IsLoopback()):
				// link-local and the like: unusable without a zone
			case ip.IsLoopback():
				loop = append(loop, ip)
			default:
				addrs = append(addrs, ip)
			}
		}
	}
	if cfg.Loopback || len(addrs) == 0 {
		addrs, loopback = append(addrs, loop...), len(loop) > 0
	}
	if len(addrs) == 0 {
		return nil, false, errors.New("webrtcleg: no usable local address")
	}
	return addrs, loopback, nil
}

// bindAll binds every address on one port: the first one on port (0 picks
// a free port), the others on the port it got.
func bindAll(addrs []netip.Addr, port int) ([]*net.UDPConn, error) {
	conns := make([]*net.UDPConn, 0, len(addrs))
	for _, ip := range addrs {
		network := "udp4"
		if ip.Is6() {
			network = "udp6"
		}
		c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("webrtcleg: listen %s: %w", netip.AddrPortFrom(ip, uint16(port)), err)
		}
		// One socket carries every call's media: give it room for bursts.
		_ = c.SetReadBuffer(1 << 20)
		_ = c.SetWriteBuffer(1 << 20)
		conns = append(conns, c)
		port = c.LocalAddr().(*net.UDPAddr).Port
	}
	return conns, nil
}

// newMux puts the sockets under pion's ICE UDP mux, which routes each
// packet to its peer connection by ICE ufrag (first STUN check) and then by
// remote address.
func newMux(conns []*net.UDPConn, logs pionLogs) ice.UDPMux {
	muxes := make([]ice.UDPMux, len(conns))
	for i, c := range conns {
		var pc net.PacketConn = c
		if ip := c.LocalAddr().(*net.UDPAddr).IP; ip.IsLoopback() {
			pc = loopbackOnly{c}
		}
		muxes[i] = ice.NewUDPMuxDefault(ice.UDPMuxParams{Logger: logs.NewLogger("udpmux"), UDPConn: pc})
	}
	if len(muxes) == 1 {
		return muxes[0]
	}
	return ice.NewMultiUDPMuxDefault(muxes...)
}

// loopbackOnly is a socket bound to a loopback address that takes packets
// from loopback sources only. The kernel delivers a local client's packets
// from any of the host's addresses to 127.0.0.1, and a browser's ICE then
// happily settles on such a pair; a box that listens on loopback only
// means to serve local peers over loopback.
type loopbackOnly struct{ *net.UDPConn }

func (l loopbackOnly) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := l.UDPConn.ReadFrom(b)
		if err != nil {
			return n, a, err
		}
		if ua, ok := a.(*net.UDPAddr); ok && !ua.IP.IsLoopback() {
			continue
		}
		return n, a, nil
	}
}

// ReadFromAddrPort and WriteToAddrPort are the allocation-free pair
// pion's mux uses when a socket offers them (ice.AddrPortReaderWriter);
// reads filter the same way.
func (l loopbackOnly) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, a, err := l.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil || a.Addr().Unmap().IsLoopback() {
			return n, a, err
		}
	}
}

// WriteToAddrPort sends b to addr.
func (l loopbackOnly) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return l.UDPConn.WriteToUDPAddrPort(b, addr)
}
