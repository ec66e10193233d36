//! `jsonb` arguments a hostile client may shape: pgrx's own `JsonB` panics (XX000) on JSON it
//! cannot read back, for instance nesting deeper than serde_json's 128 levels, which PostgreSQL
//! accepts. `JsonInput` reads the same argument and reports such input as 22023.

use crate::errors::AuthError;
use pgrx::callconv::{Arg, ArgAbi};
use pgrx::datum::FromDatum;
use pgrx::nullable::Nullable;
use pgrx::pg_sys;

/// A `jsonb` argument, parsed; unusable JSON is 22023 before the function body runs.
pub struct JsonInput(pub serde_json::Value);

impl FromDatum for JsonInput {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a non-null jsonb datum; jsonb_out returns a palloc'd C string (freed with
        // the call's memory context).
        let text = unsafe { pgrx::direct_function_call::<&std::ffi::CStr>(pg_sys::jsonb_out, &[Some(datum)]) }?;
        let text = text.to_str().unwrap_or_else(|_| AuthError::InvalidParameter("JSON argument is not UTF-8".into()).raise());
        match serde_json::from_str(text) {
            Ok(value) => Some(JsonInput(value)),
            Err(e) => AuthError::InvalidParameter(format!("unusable JSON argument: {e}")).raise(),
        }
    }
}

// SAFETY: the argument is a jsonb datum (the SQL type below), read through FromDatum.
unsafe impl<'fcx> ArgAbi<'fcx> for JsonInput {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe { arg.unbox_arg_using_from_datum() }.unwrap_or_else(|| panic!("argument {index} must not be null"))
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum() }.into()
    }
}

// Declared as jsonb in SQL: the functions' signatures do not change.
pgrx::impl_sql_translatable!(JsonInput, arg_only = "jsonb");
