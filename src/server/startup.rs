//! The startup phase of a connection: which ref the database name selects (unknown →
//! `3D000` with candidates), who the user is and how they prove it. No users in the
//! store → trust (the server only runs on loopback then, see `check_options`); with
//! users → SCRAM-SHA-256 (default), md5, or a cleartext password over TLS.
//! Verifiers come from `crate::users`; this file never sees a stored password.

use super::{AuthMethod, Shared};
use crate::users::{self, Role, User};
use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::md5pass::Md5PasswordAuthStartupHandler;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::{
    ClientInfo, ConnectionManager, PgWireConnectionState, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator, METADATA_DATABASE, METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use std::fmt::Debug;
use std::sync::Arc;

/// Client metadata keys this server sets after startup.
pub const META_REF: &str = "bagbase.ref";
pub const META_ROLE: &str = "bagbase.role";

type Params = DefaultServerParameterProvider;

fn params() -> Params {
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = format!("15.0 (bagbase {})", env!("CARGO_PKG_VERSION"));
    p
}

/// One per connection: SASL keeps per-connection state.
pub struct Startup {
    shared: Arc<Shared>,
    inner: Inner,
}

enum Inner {
    Trust(Trust),
    Scram(Box<SASLAuthStartupHandler<Params>>),
    Md5(Box<Md5PasswordAuthStartupHandler<UserSource, Params>>),
    Cleartext(Cleartext),
}

impl Startup {
    pub fn new(shared: Arc<Shared>) -> Startup {
        let manager = Arc::clone(&shared.connections);
        let source = Arc::new(UserSource(Arc::clone(&shared)));
        // A store error reads as "has users": never fall back to trust by accident.
        let inner = if !shared.store.has_users().unwrap_or(true) {
            Inner::Trust(Trust(manager))
        } else {
            match shared.opts.auth {
                AuthMethod::ScramSha256 => {
                    let mut scram = ScramAuth::new(source);
                    scram.set_iterations(users::SCRAM_ITERATIONS as usize);
                    Inner::Scram(Box::new(
                        SASLAuthStartupHandler::new(Arc::new(params()))
                            .with_scram(scram)
                            .with_connection_manager(manager),
                    ))
                }
                AuthMethod::Md5 => Inner::Md5(Box::new(
                    Md5PasswordAuthStartupHandler::new(source, Arc::new(params()))
                        .with_connection_manager(manager),
                )),
                AuthMethod::Password => Inner::Cleartext(Cleartext {
                    shared: Arc::clone(&shared),
                }),
            }
        };
        Startup { shared, inner }
    }

    /// The ref a connection reads: the database name, or `main` when none was given
    /// or when it is just the user's name (what libpq sends by default).
    fn pick_ref(&self, user: Option<&str>, database: Option<&str>) -> PgWireResult<String> {
        let db = match database {
            None | Some("") => return Ok(crate::version::DEFAULT_BRANCH.into()),
            Some(db) => db,
        };
        match self.shared.store.resolve(db) {
            Ok(_) => Ok(db.to_string()),
            Err(_) if Some(db) == user => Ok(crate::version::DEFAULT_BRANCH.into()),
            Err(e) => {
                let mut info = ErrorInfo::new(
                    "FATAL".into(),
                    "3D000".into(),
                    format!("database \"{db}\" does not exist"),
                );
                info.detail = Some(e.to_string());
                info.hint = Some(
                    "the database name is a ref: a branch, a tag, or a version id (prefix)".into(),
                );
                Err(PgWireError::UserError(Box::new(info)))
            }
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut selected = None;
        if let PgWireFrontendMessage::Startup(s) = &message {
            let user = s.parameters.get(METADATA_USER).map(String::as_str);
            let db = s.parameters.get(METADATA_DATABASE).map(String::as_str);
            let r = self.pick_ref(user, db)?;
            let role = match &self.inner {
                Inner::Trust(_) => Role::Admin,
                _ => user
                    .and_then(|u| self.shared.store.user(u).ok().flatten())
                    .map_or(Role::Read, |u| u.role),
            };
            selected = Some((r, role));
        }
        match &self.inner {
            Inner::Trust(h) => h.on_startup(client, message).await?,
            Inner::Scram(h) => h.on_startup(client, message).await?,
            Inner::Md5(h) => h.on_startup(client, message).await?,
            Inner::Cleartext(h) => h.on_startup(client, message).await?,
        }
        if let Some((r, role)) = selected {
            client.metadata_mut().insert(META_REF.into(), r);
            client
                .metadata_mut()
                .insert(META_ROLE.into(), role.to_string());
        }
        Ok(())
    }
}

/// No users: everyone is admin, on a loopback listener only.
struct Trust(Arc<ConnectionManager>);

impl NoopStartupHandler for Trust {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(Arc::clone(&self.0))
    }
}

/// Gives pgwire the verifier it needs for SCRAM (salted password) or md5.
#[derive(Debug)]
struct UserSource(Arc<Shared>);

impl Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("listen", &self.opts.listen)
            .finish()
    }
}

#[async_trait]
impl AuthSource for UserSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let name = login.user().unwrap_or_default();
        let user = self.0.store.user(name).ok().flatten();
        match self.0.opts.auth {
            AuthMethod::Md5 => {
                // md5(md5(password || user) || salt), as libpq sends it.
                let salt: [u8; 4] = users::random_bytes();
                let stored =
                    user.map_or_else(|| hex::encode(users::random_bytes::<16>()), |u| u.md5);
                let mut b = stored.into_bytes();
                b.extend_from_slice(&salt);
                let want = format!("md5{:x}", md5::compute(b));
                Ok(Password::new(Some(salt.to_vec()), want.into_bytes()))
            }
            _ => {
                // An unknown user gets a random verifier, so the exchange looks the
                // same and fails only at the proof (no user enumeration).
                let (salt, salted) = match user {
                    Some(User {
                        scram_salt,
                        scram_salted_password,
                        ..
                    }) => (
                        hex::decode(scram_salt).unwrap_or_default(),
                        hex::decode(scram_salted_password).unwrap_or_default(),
                    ),
                    None => (
                        users::random_bytes::<16>().to_vec(),
                        users::random_bytes::<32>().to_vec(),
                    ),
                };
                Ok(Password::new(Some(salt), salted))
            }
        }
    }
}

/// Cleartext password (over TLS only): checked against the SCRAM verifier.
struct Cleartext {
    shared: Arc<Shared>,
}

impl Cleartext {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                pgwire::api::auth::protocol_negotiation(client, startup).await?;
                pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::CleartextPassword,
                    ))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(pwd) => {
                let pwd = pwd.into_password()?;
                let name = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                let ok = self
                    .shared
                    .store
                    .user(&name)
                    .ok()
                    .flatten()
                    .is_some_and(|u| u.password_matches(&pwd.password));
                if !ok {
                    return Err(PgWireError::InvalidPassword(name));
                }
                let (pid, key) = RandomPidSecretKeyGenerator::default().generate(client);
                client.set_pid_and_secret_key(pid, key.clone());
                let (handle, guard) = self.shared.connections.register(pid, key);
                client.session_extensions().insert(handle);
                client.session_extensions().insert(guard);
                pgwire::api::auth::finish_authentication(client, &params()).await?;
            }
            _ => {}
        }
        Ok(())
    }
}
