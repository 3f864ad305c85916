package pbx

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// wsListener stands in front of sipgo's WebSocket server. sipgo upgrades
// connections inside its accept loop with no deadline, so one slow client
// would hold up every other, and it does not look at the Origin. Here each
// connection's HTTP handshake is read on its own goroutine under a
// deadline and checked (a GET with Upgrade: websocket, a size limit, an
// allowed Origin); only then is the connection handed to sipgo, with the
// bytes already read put back in front.
type wsListener struct {
	inner   net.Listener
	origins []string // allowed origins; "*" allows all
	log     *slog.Logger
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// wsHandshakeTimeout bounds the time a client has to send its upgrade
// request; wsMaxHandshake its size.
const (
	wsHandshakeTimeout = 5 * time.Second
	wsMaxHandshake     = 16 << 10
)

func newWSListener(inner net.Listener, origins []string, log *slog.Logger) *wsListener {
	l := &wsListener{inner: inner, origins: origins, log: log, conns: make(chan net.Conn), done: make(chan struct{})}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *wsListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.inner.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case <-l.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		l.wg.Add(1)
		go l.vet(c)
	}
}

// vet reads and checks one handshake.
func (l *wsListener) vet(c net.Conn) {
	defer l.wg.Done()
	_ = c.SetReadDeadline(time.Now().Add(wsHandshakeTimeout))
	br := bufio.NewReaderSize(c, 4096)
	var head bytes.Buffer
	for {
		line, err := br.ReadSlice('\n')
		head.Write(line)
		if err != nil || head.Len() > wsMaxHandshake {
			c.Close()
			return
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head.Bytes())))
	if err != nil || req.Method != http.MethodGet || !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
		c.Close()
		return
	}
	if origin := req.Header.Get("Origin"); origin != "" && !l.allowed(origin, req.Host) {
		l.log.Info("SIP over WebSocket: origin not allowed", "origin", truncateAttr(origin), "source", c.RemoteAddr().String())
		_, _ = c.Write([]byte("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &prefixConn{Conn: c, r: br, prefix: head.Bytes()}
	select {
	case l.conns <- pc:
	case <-l.done:
		c.Close()
	}
}

// allowed reports whether a browser page from origin may connect: one of
// the configured origins, "*", or the box itself (the origin's host is the
// host the client connected to).
func (l *wsListener) allowed(origin, host string) bool {
	for _, o := range l.origins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	oh, ch := u.Hostname(), host
	if h, _, err := net.SplitHostPort(host); err == nil {
		ch = h
	}
	return oh != "" && strings.EqualFold(oh, ch)
}

func truncateAttr(s string) string {
	if len(s) > 100 {
		return s[:100]
	}
	return s
}

// Accept hands sipgo a connection whose handshake passed.
func (l *wsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and waits for handshakes in progress.
func (l *wsListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
		l.wg.Wait()
	})
	return err
}

// Addr is the listening address.
func (l *wsListener) Addr() net.Addr { return l.inner.Addr() }

// prefixConn replays the handshake bytes already read (and whatever the
// reader buffered after them) before reading the connection again.
type prefixConn struct {
	net.Conn
	r      *bufio.Reader
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	if p.r != nil {
		if p.r.Buffered() > 0 {
			return p.r.Read(b)
		}
		p.r = nil
	}
	return p.Conn.Read(b)
}
