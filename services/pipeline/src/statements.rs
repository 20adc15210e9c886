//! The xAPI statements the Statements resource keeps beside the records they make: what the
//! connector may ask of the store about them, and nothing more.

use crate::Pipeline;
use std::collections::HashMap;
use trainhub_store::xapi::{NewAttachment, NewStatement, StatementQuery, StoredStatement};
use trainhub_store::Error;

impl Pipeline {
    /// The statement `id` of `system`, as stored.
    pub async fn statement(
        &self,
        system: &str,
        id: &str,
    ) -> Result<Option<StoredStatement>, Error> {
        self.store().xapi_statement(system, id).await
    }

    /// The statements of `system` stored under these ids, by id.
    pub async fn statements_in(
        &self,
        system: &str,
        ids: &[String],
    ) -> Result<HashMap<String, StoredStatement>, Error> {
        self.store().xapi_statements_in(system, ids).await
    }

    /// The statements `query` finds, in its order (never a voided one).
    pub async fn query_statements(
        &self,
        query: &StatementQuery,
    ) -> Result<Vec<StoredStatement>, Error> {
        self.store().xapi_query(query).await
    }

    /// The query keys statement `id` of `system` is found by.
    pub async fn statement_keys(
        &self,
        system: &str,
        id: &str,
    ) -> Result<Vec<(i64, Vec<u8>)>, Error> {
        self.store().xapi_keys(system, id).await
    }

    /// The attachments with these hashes.
    pub async fn statement_attachments(
        &self,
        hashes: &[String],
    ) -> Result<Vec<NewAttachment>, Error> {
        self.store().xapi_attachments(hashes).await
    }

    /// Up to `limit` statements an earlier release stored without query keys: (system,
    /// statement, when stored).
    pub async fn unindexed_statements(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, StoredStatement, String)>, Error> {
        self.store().xapi_unindexed(limit).await
    }

    /// Stores what queries need of an earlier release's statement.
    pub async fn reindex_statement(&self, statement: &NewStatement) -> Result<(), Error> {
        self.store().xapi_reindex(statement).await
    }
}
