//! A call's two sides on one timeline: the caller on the left channel, the agent on the right,
//! 8 kHz 16-bit. Each side arrives as pieces stamped with where they belong (Twilio's media
//! `timestamp` for the caller, the pacer's play clock for the agent), so a piece is written at
//! its sample position rather than appended: a late or lost frame leaves silence where it was,
//! not a shift of everything after it. Positions are in samples, never read from a clock, so
//! tests are exact.
//!
//! Memory grows with what was recorded (in 10 s blocks) and never past `max_samples` per
//! channel: a piece past the cap is dropped (and counted), so a runaway stream cannot exhaust
//! the appliance.

use super::TWILIO_RATE;

/// Which side of the call a piece of audio is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The person on the phone: the left channel.
    Caller = 0,
    /// Our agent: the right channel.
    Agent = 1,
}

/// Samples per channel in one block of the timeline: 10 s.
const BLOCK: usize = 10 * TWILIO_RATE as usize;

/// Two channels of 8 kHz PCM, bounded. The timeline is kept in 10 s blocks, allocated as they
/// are first written: a long call's recording grows without ever copying what it holds (one
/// growing buffer would copy hundreds of megabytes under the lock, in the middle of a call).
#[derive(Debug, Clone, Default)]
pub struct StereoRecorder {
    /// Interleaved `[left, right]` pairs, [`BLOCK`] pairs per block; silence until written.
    blocks: Vec<Vec<i16>>,
    /// Samples per channel up to the last one written.
    len: usize,
    /// The longest recording, in samples per channel.
    max_samples: usize,
    /// Samples that fell past the cap and were dropped.
    dropped: u64,
}

impl StereoRecorder {
    /// A recorder of at most `max_samples` samples per channel.
    pub fn new(max_samples: usize) -> Self {
        Self {
            max_samples,
            ..Self::default()
        }
    }

    /// A recorder of at most `seconds` at 8 kHz.
    pub fn for_seconds(seconds: u32) -> Self {
        Self::new(seconds as usize * TWILIO_RATE as usize)
    }

    /// Writes `pcm` on `side` from sample `at` on: what was there is replaced (the same
    /// instant heard twice is one instant), the rest of the timeline is left alone.
    pub fn write(&mut self, side: Side, at: usize, pcm: &[i16]) {
        let end = at.saturating_add(pcm.len()).min(self.max_samples);
        let kept = end.saturating_sub(at);
        self.dropped += (pcm.len() - kept) as u64;
        if kept == 0 {
            return;
        }
        let blocks = end.div_ceil(BLOCK);
        if self.blocks.len() < blocks {
            self.blocks.resize_with(blocks, || vec![0; BLOCK * 2]);
        }
        for (i, s) in pcm[..kept].iter().enumerate() {
            let n = at + i;
            self.blocks[n / BLOCK][(n % BLOCK) * 2 + side as usize] = *s;
        }
        self.len = self.len.max(end);
    }

    /// Silences `side` from sample `at` to the end: audio that was sent but never played (a
    /// `clear` dropped it at Twilio, or the call ended under it).
    pub fn silence_from(&mut self, side: Side, at: usize) {
        for n in at..self.len {
            self.blocks[n / BLOCK][(n % BLOCK) * 2 + side as usize] = 0;
        }
    }

    /// Samples per channel so far (up to the last written one).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Samples dropped at the cap.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The recording, interleaved (left, right) as a WAV's data chunk holds it, in pieces.
    pub fn interleaved(&self) -> impl Iterator<Item = &[i16]> {
        let len = self.len;
        self.blocks.iter().enumerate().map(move |(b, block)| {
            let n = (len - b * BLOCK).min(BLOCK);
            &block[..n * 2]
        })
    }

    /// One side alone.
    pub fn channel(&self, side: Side) -> Vec<i16> {
        self.interleaved()
            .flat_map(|piece| piece.chunks_exact(2).map(move |pair| pair[side as usize]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(from: i16, n: usize) -> Vec<i16> {
        (0..n as i16).map(|i| from + i).collect()
    }

    #[test]
    fn pieces_land_at_their_positions_with_silence_between() {
        let mut r = StereoRecorder::new(8000);
        r.write(Side::Caller, 160, &ramp(1, 160));
        r.write(Side::Agent, 480, &ramp(1000, 160));
        assert_eq!(r.len(), 640);
        let left = r.channel(Side::Caller);
        let right = r.channel(Side::Agent);
        assert!(left[..160].iter().all(|s| *s == 0), "gap before the caller");
        assert_eq!(&left[160..320], &ramp(1, 160)[..]);
        assert!(left[320..].iter().all(|s| *s == 0));
        assert!(right[..480].iter().all(|s| *s == 0), "gap before the agent");
        assert_eq!(&right[480..640], &ramp(1000, 160)[..]);
        // Interleaved as a WAV holds it: left then right for each instant.
        let all: Vec<i16> = r.interleaved().flatten().copied().collect();
        assert_eq!(all.len(), 1280);
        assert_eq!(&all[320..324], &[1, 0, 2, 0]);
        assert_eq!(&all[960..964], &[0, 1000, 0, 1001]);
    }

    #[test]
    fn a_lost_frame_leaves_silence_and_shifts_nothing() {
        let mut r = StereoRecorder::new(8000);
        // Frames 0, 1 and 3 of a stream (20 ms each); frame 2 never came.
        for (k, v) in [(0usize, 10i16), (1, 20), (3, 40)] {
            r.write(Side::Caller, k * 160, &[v; 160]);
        }
        let left = r.channel(Side::Caller);
        assert_eq!(left.len(), 640);
        assert!(left[320..480].iter().all(|s| *s == 0));
        assert!(left[480..].iter().all(|s| *s == 40));
    }

    #[test]
    fn overlapping_pieces_replace_on_their_side_only() {
        let mut r = StereoRecorder::new(8000);
        r.write(Side::Agent, 0, &[5; 320]);
        r.write(Side::Caller, 0, &[7; 480]);
        r.write(Side::Agent, 160, &[9; 320]);
        let right = r.channel(Side::Agent);
        assert!(right[..160].iter().all(|s| *s == 5));
        assert!(right[160..480].iter().all(|s| *s == 9));
        assert!(r.channel(Side::Caller).iter().all(|s| *s == 7));
    }

    #[test]
    fn audio_past_the_cap_is_dropped_and_counted() {
        let mut r = StereoRecorder::new(400);
        r.write(Side::Caller, 320, &[3; 160]);
        assert_eq!(r.len(), 400);
        assert_eq!(r.dropped(), 80);
        assert!(r.channel(Side::Caller)[320..].iter().all(|s| *s == 3));
        r.write(Side::Agent, 400, &[3; 160]);
        r.write(Side::Agent, usize::MAX - 10, &[3; 160]);
        assert_eq!((r.len(), r.dropped()), (400, 400));
        assert_eq!(r.blocks.len(), 1, "nothing allocated past the cap");
        // Seconds, at 8 kHz.
        assert_eq!(StereoRecorder::for_seconds(2).max_samples, 16_000);
    }

    #[test]
    fn blocks_join_seamlessly_and_are_allocated_as_written() {
        let mut r = StereoRecorder::for_seconds(60);
        // A piece across the first block boundary, then one 35 s in.
        r.write(Side::Caller, BLOCK - 100, &ramp(1, 200));
        r.write(Side::Agent, 35 * 8000, &[4; 160]);
        assert_eq!(r.blocks.len(), 4);
        assert_eq!(r.len(), 35 * 8000 + 160);
        let left = r.channel(Side::Caller);
        assert_eq!(&left[BLOCK - 100..BLOCK + 100], &ramp(1, 200)[..]);
        let right = r.channel(Side::Agent);
        assert!(right[35 * 8000..].iter().all(|s| *s == 4));
        assert_eq!(right.iter().filter(|s| **s != 0).count(), 160);
        let pieces: Vec<usize> = r.interleaved().map(<[i16]>::len).collect();
        assert_eq!(
            pieces,
            vec![BLOCK * 2, BLOCK * 2, BLOCK * 2, 5 * 8000 * 2 + 320]
        );
    }

    #[test]
    fn unplayed_agent_audio_is_silenced_and_the_caller_kept() {
        let mut r = StereoRecorder::new(8000);
        r.write(Side::Caller, 0, &[1; 640]);
        r.write(Side::Agent, 0, &[2; 640]);
        r.silence_from(Side::Agent, 200);
        let right = r.channel(Side::Agent);
        assert!(right[..200].iter().all(|s| *s == 2));
        assert!(right[200..].iter().all(|s| *s == 0));
        assert!(r.channel(Side::Caller).iter().all(|s| *s == 1));
        // Past the end: nothing to do.
        r.silence_from(Side::Agent, 10_000);
        assert_eq!(r.len(), 640);
    }
}
