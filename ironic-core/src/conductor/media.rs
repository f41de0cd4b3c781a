//! Indicators (LEDs) and virtual media: thin, locked calls into the node's
//! management interface (API 1.63, 1.89, 1.93).

use super::Conductor;
use crate::driver::VmediaDevice;
use crate::error::Result;
use crate::ids::Ident;
use crate::model::JsonMap;

impl Conductor {
    /// The indicators of each component: `{component: {indicator: {readonly, states}}}`
    /// (shared lock).
    pub async fn get_supported_indicators(&self, ident: &Ident) -> Result<JsonMap> {
        let task = self.shared_task(ident).await?;
        let d = task.driver()?.clone();
        Ok(d.management.get_supported_indicators(&task).await?)
    }

    /// The state (`ON`, `OFF`, `BLINKING`, `UNKNOWN`) of one indicator (shared lock).
    pub async fn get_indicator_state(
        &self,
        ident: &Ident,
        component: &str,
        indicator: &str,
    ) -> Result<String> {
        let task = self.shared_task(ident).await?;
        let d = task.driver()?.clone();
        Ok(d.management
            .get_indicator_state(&task, component, indicator)
            .await?)
    }

    /// Set one indicator (exclusive lock).
    pub async fn set_indicator_state(
        &self,
        ident: &Ident,
        component: &str,
        indicator: &str,
        state: &str,
    ) -> Result<()> {
        self.check_accepting()?;
        let job = self.job(ident, true).await?;
        let r: Result<()> = async {
            let d = job.task.driver()?.clone();
            Ok(d.management
                .set_indicator_state(&job.task, component, indicator, state)
                .await?)
        }
        .await;
        job.finish().await;
        r
    }

    /// Insert `image_url` into the node's virtual `device` (exclusive lock).
    pub async fn attach_virtual_media(
        &self,
        ident: &Ident,
        device: VmediaDevice,
        image_url: &str,
    ) -> Result<()> {
        self.check_accepting()?;
        let job = self.job(ident, true).await?;
        let r: Result<()> = async {
            let d = job.task.driver()?.clone();
            d.management.validate(&job.task)?;
            Ok(d.management
                .attach_virtual_media(&job.task, device, image_url)
                .await?)
        }
        .await;
        job.finish().await;
        r
    }

    /// Eject virtual media (every device type when `devices` is empty; exclusive lock).
    pub async fn detach_virtual_media(
        &self,
        ident: &Ident,
        devices: &[VmediaDevice],
    ) -> Result<()> {
        self.check_accepting()?;
        let job = self.job(ident, true).await?;
        let r: Result<()> = async {
            let d = job.task.driver()?.clone();
            d.management.validate(&job.task)?;
            Ok(d.management
                .detach_virtual_media(&job.task, devices)
                .await?)
        }
        .await;
        job.finish().await;
        r
    }

    /// What the node's virtual media devices hold (shared lock).
    pub async fn get_virtual_media(&self, ident: &Ident) -> Result<serde_json::Value> {
        let task = self.shared_task(ident).await?;
        let d = task.driver()?.clone();
        d.management.validate(&task)?;
        Ok(d.management.get_virtual_media(&task).await?)
    }
}
