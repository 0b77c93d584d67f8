//! A JSON list that nearly always holds one element, kept without a heap allocation for it
//! (profiled: the per-event `Vec<Choice>` of OpenAI streams was one of the client's costs).

use serde::{Deserialize, Deserializer};

/// A list (`null` reads as empty): its first element inline, any others in a `Vec`.
pub(crate) struct OneOrMore<T> {
    first: Option<T>,
    rest: Vec<T>,
}

impl<T> Default for OneOrMore<T> {
    fn default() -> Self {
        Self {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<T> IntoIterator for OneOrMore<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;
    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.rest)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMore<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = OneOrMore<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list or null")
            }
            fn visit_unit<E>(self) -> Result<OneOrMore<T>, E> {
                Ok(OneOrMore::default())
            }
            fn visit_none<E>(self) -> Result<OneOrMore<T>, E> {
                Ok(OneOrMore::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<OneOrMore<T>, D::Error> {
                d.deserialize_seq(self)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMore<T>, A::Error> {
                let mut l = OneOrMore {
                    first: seq.next_element()?,
                    rest: Vec::new(),
                };
                while let Some(x) = seq.next_element()? {
                    l.rest.push(x);
                }
                Ok(l)
            }
        }
        d.deserialize_option(V(std::marker::PhantomData))
    }
}
