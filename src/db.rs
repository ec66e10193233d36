//! Small SPI helpers. Reads go through `Spi::connect` + `select`, which, unlike pgrx's
//! `Spi::get_one_with_args`, does not assign a transaction id: identity checks run inside
//! read-only transactions and on hot paths. No row reads as `None` (pgrx would error).

use crate::errors::OrRaise;
use pgrx::datum::{DatumWithOid, FromDatum, IntoDatum};
use pgrx::prelude::*;
use pgrx::spi::{SpiHeapTupleData, SpiResult};

/// The first row of a read-only query, mapped by `f`, or `None` when there is no row.
pub fn read_row<R>(query: &str, args: &[DatumWithOid], f: impl FnOnce(&SpiHeapTupleData) -> SpiResult<R>) -> Option<R> {
    Spi::connect(|client| {
        let mut rows = client.select(query, Some(1), args)?;
        rows.next().map(|row| f(&row)).transpose()
    })
    .or_raise()
}

/// Column 1 of every row of a read-only query (NULLs skipped).
pub fn read_all<T: FromDatum + IntoDatum>(query: &str, args: &[DatumWithOid]) -> Vec<T> {
    Spi::connect(|client| {
        client.select(query, None, args)?.map(|row| row.get::<T>(1)).collect::<Result<Vec<_>, _>>()
    })
    .or_raise()
    .into_iter()
    .flatten()
    .collect()
}

pub fn read_one<T: FromDatum + IntoDatum>(query: &str, args: &[DatumWithOid]) -> Option<T> {
    read_row(query, args, |row| row.get::<T>(1)).flatten()
}

pub fn write(query: &str, args: &[DatumWithOid]) {
    Spi::run_with_args(query, args).or_raise()
}

pub fn to_pg(id: uuid::Uuid) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*id.as_bytes())
}

pub fn from_pg(id: pgrx::Uuid) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*id.as_bytes())
}
