//! Area code -> IANA timezone for NANP numbers.
//!
//! The calling window is the called party's local time, and for US/Canada
//! leads the area code is the only location we have. The table covers every
//! US and Canadian geographic area code in service (plus announced overlays,
//! which cost nothing), the US territories and the other NANP countries of the
//! Caribbean and Bermuda. Non-geographic codes (toll-free 8XX, 500s, 600, 700,
//! 900) are absent on purpose: such leads must carry an explicit timezone.
//!
//! Where an area code spans two zones the zone of most of its population is
//! used; those rows are marked "split" below. Campaigns that must be exact for
//! such leads should import an explicit `timezone` column.

use chrono_tz::{America, Atlantic, Pacific, Tz};

/// IANA timezone of a NANP number (`"+1NPANXXXXXX"`) from its area code.
/// `None` for non-NANP numbers, malformed input and non-geographic codes.
pub fn timezone_for_number(e164: &str) -> Option<Tz> {
    let national = e164.strip_prefix("+1")?;
    if national.len() != 10 || !national.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let npa: u16 = national.get(..3)?.parse().ok()?;
    AREA_CODES
        .binary_search_by_key(&npa, |&(code, _)| code)
        .ok()
        .and_then(|i| AREA_CODES.get(i))
        .map(|&(_, tz)| tz)
}

/// Sorted by area code (binary search; a test checks the order).
static AREA_CODES: &[(u16, Tz)] = &[
    (201, America::New_York),              // NJ
    (202, America::New_York),              // DC
    (203, America::New_York),              // CT
    (204, America::Winnipeg),              // MB
    (205, America::Chicago),               // AL
    (206, America::Los_Angeles),           // WA
    (207, America::New_York),              // ME
    (208, America::Boise), // ID; split: south ID (Boise) Mountain; the panhandle is Pacific
    (209, America::Los_Angeles), // CA
    (210, America::Chicago), // TX
    (212, America::New_York), // NY
    (213, America::Los_Angeles), // CA
    (214, America::Chicago), // TX
    (215, America::New_York), // PA
    (216, America::New_York), // OH
    (217, America::Chicago), // IL
    (218, America::Chicago), // MN
    (219, America::Chicago), // IN; split: northwest IN (Gary/Hammond) keeps Chicago time
    (220, America::New_York), // OH
    (223, America::New_York), // PA
    (224, America::Chicago), // IL
    (225, America::Chicago), // LA
    (226, America::Toronto), // ON
    (227, America::New_York), // MD
    (228, America::Chicago), // MS
    (229, America::New_York), // GA
    (231, America::Detroit), // MI
    (234, America::New_York), // OH
    (235, America::Chicago), // MO
    (236, America::Vancouver), // BC
    (239, America::New_York), // FL
    (240, America::New_York), // MD
    (242, America::Nassau), // Bahamas
    (246, America::Barbados), // Barbados
    (248, America::Detroit), // MI
    (249, America::Toronto), // ON
    (250, America::Vancouver), // BC; split: BC interior: East Kootenay Mountain, Peace River no DST; most of 250 Pacific
    (251, America::Chicago),   // AL
    (252, America::New_York),  // NC
    (253, America::Los_Angeles), // WA
    (254, America::Chicago),   // TX
    (256, America::Chicago),   // AL
    (257, America::Vancouver), // BC; split: overlay of 250, same split
    (260, America::Indiana::Indianapolis), // IN
    (262, America::Chicago),   // WI
    (263, America::Toronto),   // QC
    (264, America::Anguilla),  // Anguilla
    (267, America::New_York),  // PA
    (268, America::Antigua),   // Antigua
    (269, America::Detroit),   // MI
    (270, America::Chicago), // KY; split: western KY: Bowling Green/Owensboro/Paducah Central; Elizabethtown Eastern
    (272, America::New_York), // PA
    (274, America::Chicago), // WI
    (276, America::New_York), // VA
    (279, America::Los_Angeles), // CA
    (281, America::Chicago), // TX
    (283, America::New_York), // OH
    (284, America::Tortola), // BVI
    (289, America::Toronto), // ON
    (301, America::New_York), // MD
    (302, America::New_York), // DE
    (303, America::Denver),  // CO
    (304, America::New_York), // WV
    (305, America::New_York), // FL
    (306, America::Regina),  // SK
    (307, America::Denver),  // WY
    (308, America::Chicago), // NE; split: west NE: Kearney/Grand Island/North Platte Central; the panhandle Mountain
    (309, America::Chicago), // IL
    (310, America::Los_Angeles), // CA
    (312, America::Chicago), // IL
    (313, America::Detroit), // MI
    (314, America::Chicago), // MO
    (315, America::New_York), // NY
    (316, America::Chicago), // KS
    (317, America::Indiana::Indianapolis), // IN
    (318, America::Chicago), // LA
    (319, America::Chicago), // IA
    (320, America::Chicago), // MN
    (321, America::New_York), // FL
    (323, America::Los_Angeles), // CA
    (324, America::New_York), // FL
    (325, America::Chicago), // TX
    (326, America::New_York), // OH
    (327, America::Chicago), // AR
    (329, America::New_York), // NY
    (330, America::New_York), // OH
    (331, America::Chicago), // IL
    (332, America::New_York), // NY
    (334, America::Chicago), // AL
    (336, America::New_York), // NC
    (337, America::Chicago), // LA
    (339, America::New_York), // MA
    (340, America::St_Thomas), // VI
    (341, America::Los_Angeles), // CA
    (343, America::Toronto), // ON
    (345, America::Cayman),  // Cayman
    (346, America::Chicago), // TX
    (347, America::New_York), // NY
    (350, America::Los_Angeles), // CA
    (351, America::New_York), // MA
    (352, America::New_York), // FL
    (353, America::Chicago), // WI
    (354, America::Toronto), // QC
    (360, America::Los_Angeles), // WA
    (361, America::Chicago), // TX
    (363, America::New_York), // NY
    (364, America::Chicago), // KY; split: overlay of 270, same split
    (365, America::Toronto), // ON
    (367, America::Toronto), // QC
    (368, America::Edmonton), // AB
    (369, America::Los_Angeles), // CA
    (380, America::New_York), // OH
    (382, America::Toronto), // ON
    (385, America::Denver),  // UT
    (386, America::New_York), // FL
    (401, America::New_York), // RI
    (402, America::Chicago), // NE
    (403, America::Edmonton), // AB
    (404, America::New_York), // GA
    (405, America::Chicago), // OK
    (406, America::Denver),  // MT
    (407, America::New_York), // FL
    (408, America::Los_Angeles), // CA
    (409, America::Chicago), // TX
    (410, America::New_York), // MD
    (412, America::New_York), // PA
    (413, America::New_York), // MA
    (414, America::Chicago), // WI
    (415, America::Los_Angeles), // CA
    (416, America::Toronto), // ON
    (417, America::Chicago), // MO
    (418, America::Toronto), // QC; split: QC: Magdalen Islands are Atlantic
    (419, America::New_York), // OH
    (423, America::New_York), // TN; split: east TN: Chattanooga/Tri-Cities Eastern
    (424, America::Los_Angeles), // CA
    (425, America::Los_Angeles), // WA
    (428, America::Moncton), // NB
    (430, America::Chicago), // TX
    (431, America::Winnipeg), // MB
    (432, America::Chicago), // TX
    (434, America::New_York), // VA
    (435, America::Denver),  // UT
    (436, America::New_York), // OH
    (437, America::Toronto), // ON
    (438, America::Toronto), // QC
    (440, America::New_York), // OH
    (441, Atlantic::Bermuda), // Bermuda
    (442, America::Los_Angeles), // CA
    (443, America::New_York), // MD
    (445, America::New_York), // PA
    (447, America::Chicago), // IL
    (448, America::Chicago), // FL; split: overlay of 850, same split
    (450, America::Toronto), // QC
    (457, America::Chicago), // LA
    (458, America::Los_Angeles), // OR
    (463, America::Indiana::Indianapolis), // IN
    (464, America::Chicago), // IL
    (468, America::Toronto), // QC
    (469, America::Chicago), // TX
    (470, America::New_York), // GA
    (472, America::New_York), // NC
    (473, America::Grenada), // Grenada
    (474, America::Regina),  // SK
    (475, America::New_York), // CT
    (478, America::New_York), // GA
    (479, America::Chicago), // AR
    (480, America::Phoenix), // AZ
    (484, America::New_York), // PA
    (501, America::Chicago), // AR
    (502, America::Kentucky::Louisville), // KY
    (503, America::Los_Angeles), // OR
    (504, America::Chicago), // LA
    (505, America::Denver),  // NM
    (506, America::Moncton), // NB
    (507, America::Chicago), // MN
    (508, America::New_York), // MA
    (509, America::Los_Angeles), // WA
    (510, America::Los_Angeles), // CA
    (512, America::Chicago), // TX
    (513, America::New_York), // OH
    (514, America::Toronto), // QC
    (515, America::Chicago), // IA
    (516, America::New_York), // NY
    (517, America::Detroit), // MI
    (518, America::New_York), // NY
    (519, America::Toronto), // ON
    (520, America::Phoenix), // AZ
    (530, America::Los_Angeles), // CA
    (531, America::Chicago), // NE
    (534, America::Chicago), // WI
    (539, America::Chicago), // OK
    (540, America::New_York), // VA
    (541, America::Los_Angeles), // OR; split: OR: Malheur County (Ontario) is Mountain
    (548, America::Toronto), // ON
    (551, America::New_York), // NJ
    (557, America::Chicago), // MO
    (559, America::Los_Angeles), // CA
    (561, America::New_York), // FL
    (562, America::Los_Angeles), // CA
    (563, America::Chicago), // IA
    (564, America::Los_Angeles), // WA
    (567, America::New_York), // OH
    (570, America::New_York), // PA
    (571, America::New_York), // VA
    (572, America::Chicago), // OK
    (573, America::Chicago), // MO
    (574, America::Indiana::Indianapolis), // IN; split: South Bend Eastern; Starke County Central
    (575, America::Denver),  // NM
    (579, America::Toronto), // QC
    (580, America::Chicago), // OK
    (581, America::Toronto), // QC
    (582, America::New_York), // PA
    (584, America::Winnipeg), // MB
    (585, America::New_York), // NY
    (586, America::Detroit), // MI
    (587, America::Edmonton), // AB
    (601, America::Chicago), // MS
    (602, America::Phoenix), // AZ
    (603, America::New_York), // NH
    (604, America::Vancouver), // BC
    (605, America::Chicago), // SD; split: SD: Sioux Falls (east) Central outnumbers Rapid City (west) Mountain
    (606, America::New_York), // KY
    (607, America::New_York), // NY
    (608, America::Chicago), // WI
    (609, America::New_York), // NJ
    (610, America::New_York), // PA
    (612, America::Chicago), // MN
    (613, America::Toronto), // ON
    (614, America::New_York), // OH
    (615, America::Chicago), // TN
    (616, America::Detroit), // MI
    (617, America::New_York), // MA
    (618, America::Chicago), // IL
    (619, America::Los_Angeles), // CA
    (620, America::Chicago), // KS; split: southwest KS: four counties on the CO border Mountain
    (623, America::Phoenix), // AZ
    (624, America::New_York), // NY
    (626, America::Los_Angeles), // CA
    (628, America::Los_Angeles), // CA
    (629, America::Chicago), // TN
    (630, America::Chicago), // IL
    (631, America::New_York), // NY
    (636, America::Chicago), // MO
    (639, America::Regina),  // SK
    (640, America::New_York), // NJ
    (641, America::Chicago), // IA
    (645, America::New_York), // FL
    (646, America::New_York), // NY
    (647, America::Toronto), // ON
    (649, America::Grand_Turk), // Turks and Caicos
    (650, America::Los_Angeles), // CA
    (651, America::Chicago), // MN
    (656, America::New_York), // FL
    (657, America::Los_Angeles), // CA
    (658, America::Jamaica), // Jamaica
    (659, America::Chicago), // AL
    (660, America::Chicago), // MO
    (661, America::Los_Angeles), // CA
    (662, America::Chicago), // MS
    (664, America::Montserrat), // Montserrat
    (667, America::New_York), // MD
    (669, America::Los_Angeles), // CA
    (670, Pacific::Saipan),  // MP
    (671, Pacific::Guam),    // GU
    (672, America::Vancouver), // BC
    (678, America::New_York), // GA
    (679, America::Detroit), // MI
    (680, America::New_York), // NY
    (681, America::New_York), // WV
    (682, America::Chicago), // TX
    (683, America::Toronto), // ON
    (684, Pacific::Pago_Pago), // AS
    (686, America::New_York), // VA
    (689, America::New_York), // FL
    (701, America::Chicago), // ND; split: ND: Fargo/Bismarck Central; the southwest Mountain
    (702, America::Los_Angeles), // NV
    (703, America::New_York), // VA
    (704, America::New_York), // NC
    (705, America::Toronto), // ON
    (706, America::New_York), // GA
    (707, America::Los_Angeles), // CA
    (708, America::Chicago), // IL
    (709, America::St_Johns), // NL; split: NL: Labrador mostly Atlantic; island of Newfoundland holds most people
    (712, America::Chicago),  // IA
    (713, America::Chicago),  // TX
    (714, America::Los_Angeles), // CA
    (715, America::Chicago),  // WI
    (716, America::New_York), // NY
    (717, America::New_York), // PA
    (718, America::New_York), // NY
    (719, America::Denver),   // CO
    (720, America::Denver),   // CO
    (721, America::Lower_Princes), // Sint Maarten
    (724, America::New_York), // PA
    (725, America::Los_Angeles), // NV
    (726, America::Chicago),  // TX
    (727, America::New_York), // FL
    (728, America::New_York), // FL
    (730, America::Chicago),  // IL
    (731, America::Chicago),  // TN
    (732, America::New_York), // NJ
    (734, America::Detroit),  // MI
    (737, America::Chicago),  // TX
    (738, America::Los_Angeles), // CA
    (740, America::New_York), // OH
    (742, America::Toronto),  // ON
    (743, America::New_York), // NC
    (747, America::Los_Angeles), // CA
    (753, America::Toronto),  // ON
    (754, America::New_York), // FL
    (757, America::New_York), // VA
    (758, America::St_Lucia), // St Lucia
    (760, America::Los_Angeles), // CA
    (762, America::New_York), // GA
    (763, America::Chicago),  // MN
    (765, America::Indiana::Indianapolis), // IN
    (767, America::Dominica), // Dominica
    (769, America::Chicago),  // MS
    (770, America::New_York), // GA
    (771, America::New_York), // DC
    (772, America::New_York), // FL
    (773, America::Chicago),  // IL
    (774, America::New_York), // MA
    (775, America::Los_Angeles), // NV; split: NV: West Wendover keeps Mountain time
    (778, America::Vancouver), // BC
    (779, America::Chicago),  // IL
    (780, America::Edmonton), // AB
    (781, America::New_York), // MA
    (782, America::Halifax),  // NS/PE
    (784, America::St_Vincent), // St Vincent
    (785, America::Chicago),  // KS; split: northwest KS: Sherman County area Mountain
    (786, America::New_York), // FL
    (787, America::Puerto_Rico), // PR
    (801, America::Denver),   // UT
    (802, America::New_York), // VT
    (803, America::New_York), // SC
    (804, America::New_York), // VA
    (805, America::Los_Angeles), // CA
    (806, America::Chicago),  // TX
    (807, America::Toronto), // ON; split: northwest ON: Thunder Bay Eastern outnumbers Kenora Central
    (808, Pacific::Honolulu), // HI
    (809, America::Santo_Domingo), // Dominican Rep.
    (810, America::Detroit), // MI
    (812, America::Indiana::Indianapolis), // IN; split: southern IN: Evansville Central; Bloomington/Columbus/Louisville suburbs Eastern
    (813, America::New_York),              // FL
    (814, America::New_York),              // PA
    (815, America::Chicago),               // IL
    (816, America::Chicago),               // MO
    (817, America::Chicago),               // TX
    (818, America::Los_Angeles),           // CA
    (819, America::Toronto),               // QC
    (820, America::Los_Angeles),           // CA
    (821, America::New_York),              // SC
    (825, America::Edmonton),              // AB
    (826, America::New_York),              // VA
    (828, America::New_York),              // NC
    (829, America::Santo_Domingo),         // Dominican Rep.
    (830, America::Chicago),               // TX
    (831, America::Los_Angeles),           // CA
    (832, America::Chicago),               // TX
    (835, America::New_York),              // PA
    (837, America::Los_Angeles),           // CA
    (838, America::New_York),              // NY
    (839, America::New_York),              // SC
    (840, America::Los_Angeles),           // CA
    (843, America::New_York),              // SC
    (845, America::New_York),              // NY
    (847, America::Chicago),               // IL
    (848, America::New_York),              // NJ
    (849, America::Santo_Domingo),         // Dominican Rep.
    (850, America::Chicago), // FL; split: FL panhandle: Pensacola/Panama City (Central) outnumber Tallahassee (Eastern)
    (854, America::New_York), // SC
    (856, America::New_York), // NJ
    (857, America::New_York), // MA
    (858, America::Los_Angeles), // CA
    (859, America::New_York), // KY
    (860, America::New_York), // CT
    (861, America::Chicago), // IL
    (862, America::New_York), // NJ
    (863, America::New_York), // FL
    (864, America::New_York), // SC
    (865, America::New_York), // TN
    (867, America::Whitehorse), // YT/NT/NU; split: Yukon (the most populous territory) has permanent UTC-7; NWT Mountain, Nunavut Eastern/Central
    (868, America::Port_of_Spain), // Trinidad and Tobago
    (869, America::St_Kitts),   // St Kitts and Nevis
    (870, America::Chicago),    // AR
    (872, America::Chicago),    // IL
    (873, America::Toronto),    // QC
    (876, America::Jamaica),    // Jamaica
    (878, America::New_York),   // PA
    (879, America::St_Johns),   // NL; split: overlay of 709, same split
    (901, America::Chicago),    // TN
    (902, America::Halifax),    // NS/PE
    (903, America::Chicago),    // TX
    (904, America::New_York),   // FL
    (905, America::Toronto),    // ON
    (906, America::Detroit), // MI; split: Upper Peninsula: Marquette/Sault Ste. Marie Eastern; four counties on the WI border Central
    (907, America::Anchorage), // AK
    (908, America::New_York), // NJ
    (909, America::Los_Angeles), // CA
    (910, America::New_York), // NC
    (912, America::New_York), // GA
    (913, America::Chicago), // KS
    (914, America::New_York), // NY
    (915, America::Denver),  // TX; split: El Paso Mountain; Hudspeth/Culberson also Mountain
    (916, America::Los_Angeles), // CA
    (917, America::New_York), // NY
    (918, America::Chicago), // OK
    (919, America::New_York), // NC
    (920, America::Chicago), // WI
    (924, America::Chicago), // MN
    (925, America::Los_Angeles), // CA
    (928, America::Phoenix), // AZ; split: northern AZ: the Navajo Nation observes DST; most of 928 does not
    (929, America::New_York), // NY
    (930, America::Indiana::Indianapolis), // IN; split: overlay of 812, same split
    (931, America::Chicago), // TN; split: middle TN: Clarksville/Cookeville Central
    (934, America::New_York), // NY
    (936, America::Chicago), // TX
    (937, America::New_York), // OH
    (938, America::Chicago), // AL
    (939, America::Puerto_Rico), // PR
    (940, America::Chicago), // TX
    (941, America::New_York), // FL
    (942, America::Toronto), // ON
    (943, America::New_York), // GA
    (945, America::Chicago), // TX
    (947, America::Detroit), // MI
    (948, America::New_York), // VA
    (949, America::Los_Angeles), // CA
    (951, America::Los_Angeles), // CA
    (952, America::Chicago), // MN
    (954, America::New_York), // FL
    (956, America::Chicago), // TX
    (959, America::New_York), // CT
    (970, America::Denver),  // CO
    (971, America::Los_Angeles), // OR
    (972, America::Chicago), // TX
    (973, America::New_York), // NJ
    (975, America::Chicago), // MO
    (978, America::New_York), // MA
    (979, America::Chicago), // TX
    (980, America::New_York), // NC
    (983, America::Denver),  // CO
    (984, America::New_York), // NC
    (985, America::Chicago), // LA
    (986, America::Boise),   // ID; split: overlay of 208, same split
    (989, America::Detroit), // MI
];

#[cfg(test)]
mod tests;
