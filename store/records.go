package store

import "time"

// Roles a User can hold. A write replaces the whole set.
const (
	RoleAdmin = "ROLE_ADMIN"
	RoleAgent = "ROLE_AGENT"
	// RoleSupervisor monitors agents (listen, coach, join), changes their
	// ACD status, reads every call record and forces agents out.
	RoleSupervisor = "ROLE_SUPERVISOR"
)

// Roles lists every role a user can hold, in a stable order.
var Roles = []string{RoleAdmin, RoleAgent, RoleSupervisor}

// Connection targets of connectToServer (User.ConnectTo).
const (
	// ConnectDevice rings the user's registered SIP devices (the default).
	ConnectDevice = "device"
	// ConnectNumber calls User.ConnectNumber through a trunk.
	ConnectNumber = "number"
	// ConnectBrowser is reserved for the WebRTC softphone page.
	ConnectBrowser = "browser"
)

// User is a person who logs in: an agent, a supervisor or an administrator.
// Service users are a different record (ServiceUser) and never appear here.
type User struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
	// PasswordHash is the argon2id PHC string; empty means the user has no
	// password yet and cannot log in.
	PasswordHash               string            `json:"passwordHash,omitempty"`
	FirstName                  string            `json:"firstName,omitempty"`
	LastName                   string            `json:"lastName,omitempty"`
	Roles                      []string          `json:"roles,omitempty"`
	Skills                     []SkillAssignment `json:"skills,omitempty"`
	DoNotDisturb               bool              `json:"doNotDisturb,omitempty"`
	ChangePasswordOnFirstLogin bool              `json:"changePasswordOnFirstLogin,omitempty"`
	Extension                  string            `json:"extension,omitempty"`
	Timezone                   string            `json:"timezone,omitempty"`
	Enabled                    bool              `json:"enabled"`
	// AcdAutoLogin lets autoLoginToAcd log the user in to the ACD with
	// DefaultAcdLoginStatus (a StatusID of the catalogue; empty means
	// "available").
	AcdAutoLogin          bool   `json:"acdAutoLogin,omitempty"`
	DefaultAcdLoginStatus string `json:"defaultAcdLoginStatus,omitempty"`
	// AcdAutoAccept answers offered ACD workitems without the agent's
	// click.
	AcdAutoAccept bool `json:"acdAutoAccept,omitempty"`
	// ConnectTo is where connectToServer calls the user: ConnectDevice
	// (empty means the same), ConnectNumber (ConnectNumber through a
	// trunk) or ConnectBrowser.
	ConnectTo          string    `json:"connectTo,omitempty"`
	ConnectNumber      string    `json:"connectNumber,omitempty"`
	CreatedAt          time.Time `json:"createdAt"`
	CreatedBy          string    `json:"createdBy,omitempty"`
	ModifiedAt         time.Time `json:"modifiedAt"`
	ModifiedBy         string    `json:"modifiedBy,omitempty"`
	PasswordModifiedAt time.Time `json:"passwordModifiedAt,omitzero"`
}

// HasRole reports whether u holds role.
func (u *User) HasRole(role string) bool {
	for _, r := range u.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// ConnectTarget is ConnectTo with the default applied.
func (u *User) ConnectTarget() string {
	if u.ConnectTo == "" {
		return ConnectDevice
	}
	return u.ConnectTo
}

// Location is the user's time zone (UTC when unset or unknown).
func (u *User) Location() *time.Location {
	if u.Timezone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(u.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// SkillAssignment links a user to a skill of the catalogue with a proficiency
// (1 lowest … 10 highest) that ACD routing weighs.
type SkillAssignment struct {
	SkillID     string `json:"skillId"`
	Proficiency int    `json:"proficiency"`
}

// Skill is an entry of the box-wide skill catalogue.
type Skill struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	CreatedBy   string    `json:"createdBy,omitempty"`
}

// Device is a SIP endpoint (desk phone, softphone) that belongs to a user and
// authenticates with digest. Only HA1 hashes are kept, never the password.
type Device struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
	Name   string `json:"name"`
	// Username is the SIP auth username, unique on the box.
	Username string `json:"username"`
	// Realm the HA1 values were computed for.
	Realm     string    `json:"realm"`
	HA1MD5    string    `json:"ha1md5"`
	HA1SHA256 string    `json:"ha1sha256"`
	CreatedAt time.Time `json:"createdAt"`
	CreatedBy string    `json:"createdBy,omitempty"`
}

// Permission scopes a ServiceUser can be granted. ScopeAdmin implies all.
const (
	ScopeAdmin          = "admin"
	ScopeUsersRead      = "users:read"
	ScopeUsersWrite     = "users:write"
	ScopeHistoryRead    = "history:read"
	ScopeRecordingsRead = "recordings:read"
	ScopeCallsControl   = "calls:control"
)

// Scopes lists every permission scope in a stable order.
var Scopes = []string{ScopeAdmin, ScopeUsersRead, ScopeUsersWrite, ScopeHistoryRead, ScopeRecordingsRead, ScopeCallsControl}

// ServiceUser is a non-person account for integrations. Its token is shown
// once; only the SHA-256 of the token is stored.
type ServiceUser struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	DisplayName string   `json:"displayName,omitempty"`
	Permissions []string `json:"permissions"`
	// TokenHash is SHA-256(token). All zero means no valid token.
	TokenHash      [32]byte  `json:"tokenHash"`
	TokenCreatedAt time.Time `json:"tokenCreatedAt"`
	LastUsedAt     time.Time `json:"lastUsedAt,omitzero"`
	CreatedAt      time.Time `json:"createdAt"`
	CreatedBy      string    `json:"createdBy,omitempty"`
	ModifiedAt     time.Time `json:"modifiedAt"`
	ModifiedBy     string    `json:"modifiedBy,omitempty"`
}

// Platforms a session may be initialised on.
const (
	PlatformWeb     = "web"
	PlatformAndroid = "android"
	PlatformIOS     = "ios"
)

// Session is a logged-in user's bearer session. It expires through Badger's
// TTL at ExpiresAt; only the SHA-256 of its token is stored.
type Session struct {
	ID        string    `json:"id"`
	UserID    string    `json:"userId"`
	TokenHash [32]byte  `json:"tokenHash"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Platform is set by initSession (web, android, ios); empty before.
	Platform      string    `json:"platform,omitempty"`
	InitializedAt time.Time `json:"initializedAt,omitzero"`
	// DeviceTokenHash is SHA-256 of the client's deviceToken, if it gave one.
	DeviceTokenHash [32]byte `json:"deviceTokenHash,omitzero"`
	RemoteAddr      string   `json:"remoteAddr,omitempty"`
	UserAgent       string   `json:"userAgent,omitempty"`
}

// TokenKind says what a token hash belongs to.
type TokenKind string

// Token owners.
const (
	TokenService TokenKind = "service"
	TokenSession TokenKind = "session"
)

// TokenOwner is what the token-hash index points at.
type TokenOwner struct {
	Kind TokenKind `json:"kind"`
	ID   string    `json:"id"`
}

// AuditRecord is one change made through the API, kept for admins to read.
type AuditRecord struct {
	// ID is assigned by AppendAudit and sorts by time.
	ID string    `json:"id"`
	At time.Time `json:"at"`
	// ActorKind is "user", "service" or "system"; ActorID its id.
	ActorKind string `json:"actorKind"`
	ActorID   string `json:"actorId,omitempty"`
	ActorName string `json:"actorName,omitempty"`
	// Action is a dotted verb such as "user.create" or "serviceUser.refreshToken".
	Action     string `json:"action"`
	TargetKind string `json:"targetKind,omitempty"`
	TargetID   string `json:"targetId,omitempty"`
	// Detail holds non-secret facts about the change (changed field names …).
	Detail     map[string]string `json:"detail,omitempty"`
	RemoteAddr string            `json:"remoteAddr,omitempty"`
}
