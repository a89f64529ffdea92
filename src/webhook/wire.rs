//! The AdmissionReview on the wire, decoded straight into what the engine reads and encoded
//! without building kube's response types.
//!
//! kube's `AdmissionReview<DynamicObject>` flattens its type fields, so serde buffers the whole
//! body through its `Content` tree before decoding it, and `DynamicObject` flattens the object a
//! second time; the engine then needed it rebuilt as a `serde_json::Value`. Here the review is
//! read field by field: `request.object` and `oldObject` become the engine's `Value` directly
//! ([`EngineObject`], the same conversion as the controller's [`engine_value`]), so admission
//! and the controller still evaluate the same document and a malformed metadata still refuses
//! the review. Every field kube requires is required here with the same type, and
//! unknown top-level fields are decoded (and dropped) as values, so that the recursion limit
//! still refuses a hostile one.
//!
//! [`engine_value`]: crate::api::object::engine_value
//! [`EngineObject`]: crate::api::object::EngineObject

use std::fmt;

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::core::admission::{AdmissionResponse, Operation};
use kube::core::{GroupVersionKind, GroupVersionResource};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::object::EngineObject;

/// The review as sent: its type, and the request.
#[derive(Debug)]
pub struct Review {
    pub api_version: String,
    pub kind: String,
    pub request: Option<Request>,
}

/// `request`, with kube's field names, types and defaults; the objects as the engine reads them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub uid: String,
    pub kind: GroupVersionKind,
    #[allow(dead_code)]
    pub resource: GroupVersionResource,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    pub request_kind: Option<GroupVersionKind>,
    #[serde(default)]
    #[allow(dead_code)]
    pub request_resource: Option<GroupVersionResource>,
    #[serde(default)]
    #[allow(dead_code)]
    pub request_sub_resource: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: Operation,
    #[allow(dead_code)]
    pub user_info: UserInfo,
    pub object: Option<EngineObject>,
    pub old_object: Option<EngineObject>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    #[allow(dead_code)]
    pub options: Option<RawExtension>,
}

enum Field {
    ApiVersion,
    Kind,
    Request,
    Response,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Field, E> {
                Ok(match s {
                    "apiVersion" => Field::ApiVersion,
                    "kind" => Field::Kind,
                    "request" => Field::Request,
                    "response" => Field::Response,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de> Deserialize<'de> for Review {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ReviewVisitor)
    }
}

struct ReviewVisitor;

impl<'de> Visitor<'de> for ReviewVisitor {
    type Value = Review;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AdmissionReview object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Review, A::Error> {
        let mut api_version: Option<String> = None;
        let mut kind: Option<String> = None;
        let mut request: Option<Option<Request>> = None;
        let mut response = false;
        while let Some(field) = m.next_key::<Field>()? {
            match field {
                Field::ApiVersion => set(&mut api_version, m.next_value()?, "apiVersion")?,
                Field::Kind => set(&mut kind, m.next_value()?, "kind")?,
                Field::Request => set(&mut request, m.next_value()?, "request")?,
                Field::Response => {
                    // Decoded as kube does, so a malformed one is still refused; never used.
                    if std::mem::replace(&mut response, true) {
                        return Err(de::Error::duplicate_field("response"));
                    }
                    m.next_value::<Option<AdmissionResponse>>()?;
                }
                // A value, not `IgnoredAny`: serde_json's recursion limit applies to values only.
                Field::Other => drop(m.next_value::<Value>()?),
            }
        }
        Ok(Review {
            api_version: api_version.ok_or_else(|| de::Error::missing_field("apiVersion"))?,
            kind: kind.ok_or_else(|| de::Error::missing_field("kind"))?,
            request: request.flatten(),
        })
    }
}

fn set<T, E: de::Error>(slot: &mut Option<T>, v: T, name: &'static str) -> Result<(), E> {
    if slot.replace(v).is_some() {
        return Err(E::duplicate_field(name));
    }
    Ok(())
}

/// The answer: `admission.k8s.io/v1` `AdmissionReview` with its `response`, encoded as kube's
/// `AdmissionResponse::into_review` would, without building it.
pub struct Answer<'a> {
    pub uid: &'a str,
    pub allowed: bool,
    /// For a denial: the HTTP code, reason and message of its status.
    pub denial: Option<(u16, &'a str, String)>,
    pub audit_annotations: &'a [(&'a str, &'a str)],
    pub warnings: Vec<String>,
}

impl Serialize for Answer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("apiVersion", "admission.k8s.io/v1")?;
        m.serialize_entry("kind", "AdmissionReview")?;
        m.serialize_entry("response", &Response(self))?;
        m.end()
    }
}

struct Response<'r, 'a>(&'r Answer<'a>);

impl Serialize for Response<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("uid", a.uid)?;
        m.serialize_entry("allowed", &a.allowed)?;
        m.serialize_entry("status", &Status(&a.denial))?;
        if !a.audit_annotations.is_empty() {
            m.serialize_entry("auditAnnotations", &Pairs(a.audit_annotations))?;
        }
        if !a.warnings.is_empty() {
            m.serialize_entry("warnings", &a.warnings)?;
        }
        m.end()
    }
}

struct Status<'r, 'a>(&'r Option<(u16, &'a str, String)>);

impl Serialize for Status<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some((code, reason, message)) = self.0 {
            m.serialize_entry("code", code)?;
            m.serialize_entry("message", message)?;
            m.serialize_entry("reason", reason)?;
        }
        m.end()
    }
}

struct Pairs<'a>(&'a [(&'a str, &'a str)]);

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}
