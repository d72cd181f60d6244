//! Customer accounts as a directory (issue 15): the billing platform owns
//! accounts; this service keeps number, name, parent and status in step
//! (`PUT /accounts/{number}` by an admin or the billing sync's machine
//! client), and lists and searches them for the invite form's "Customer
//! Association" dropdown.
//!
//! Decisions:
//! - **Descendants without a scan.** Each account stores its ancestor
//!   path (`root/…/parent/self/`, [`Account::path_key`]), so an account's
//!   descendants are one key range (`begins_with` on an index in DynamoDB,
//!   an index range in SQLite): one query per page, whatever the depth.
//!   The price is paid on the rare write that moves an account under
//!   another parent: its descendants' paths are rewritten in the same
//!   atomic write (bounded by [`use_cases::MAX_MOVED_DESCENDANTS`]). A
//!   parent pointer alone would need one query per level per read, and
//!   reads (every list by a rep or partner) vastly outnumber moves.
//! - **Who sees what.** Admins and machine clients with `accounts:read`
//!   see the whole directory; sales reps and partners see the accounts they
//!   serve and every descendant (the child-account relation: serving an
//!   account is serving its children); customers see their own accounts.
//!   An account outside that is "not found", as users are.
//! - **Users on accounts.** Invites, edits and bulk rows take only
//!   accounts the directory holds open ([`check_accounts_open`],
//!   [`check_added_accounts_open`]: one batched read), checked after the
//!   delegation rule so a non-admin learns nothing about numbers outside
//!   their reach; a rep's or partner's reach ([`reach_of`]) is read when
//!   they sign in and counts every account below theirs.
//! - **Who writes.** Admins and machine clients with `accounts:write`;
//!   every change is audited in the same write, the actor being the admin's
//!   user id or `client:<client id>` (the audit trail takes any subject).

pub mod model;
pub mod port;
pub mod use_cases;

pub use model::{Account, AccountName, AccountStatus, AccountUpsert};
pub use port::{AccountStore, AccountWrite};
pub use use_cases::{
    AccountCaller, MachineClient, check_accounts_open, check_added_accounts_open, get_account,
    list_accounts, reach_of, served_with_descendants, upsert_account,
};
